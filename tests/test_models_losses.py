"""t2t_lite.models.losses: the values, the padding weights and the float32 guarantee."""
import math

import numpy as np
import pytest

from t2t_lite.hparams import HParams
from t2t_lite.models import losses


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _reference(logits, labels, label_smoothing):
  """Per-position smoothed cross-entropy with an explicit one-hot target (numpy)."""
  vocab = logits.shape[-1]
  low = label_smoothing / (vocab - 1) if label_smoothing else 0.0
  confidence = 1.0 - label_smoothing
  target = np.full(logits.shape, low)
  np.put_along_axis(target, labels[..., None], confidence, axis=-1)
  xent = -(target * _log_softmax(logits)).sum(-1)
  normalizer = 0.0
  if label_smoothing:
    normalizer = -(confidence * math.log(confidence) + (vocab - 1) * low * math.log(low))
  return xent - normalizer


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
def test_padded_cross_entropy_matches_reference_and_skips_padding(label_smoothing):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 7)).astype("float32")
  labels = rng.integers(1, 7, size=(3, 5)).astype("int32")
  labels[0, 3:] = 0
  labels[2, 1:] = 0
  loss_sum, weight_sum = losses.padded_cross_entropy(logits, labels, label_smoothing)
  per_token = _reference(logits.astype("float64"), labels, label_smoothing)
  weights = (labels != 0).astype("float64")
  assert float(weight_sum) == weights.sum() == 15 - 2 - 4
  np.testing.assert_allclose(float(loss_sum), (per_token * weights).sum(), rtol=1e-5)


def test_padding_id_is_the_one_in_constants():
  from t2t_lite import constants  # pylint: disable=g-import-not-at-top
  assert losses.PAD_ID == constants.PAD_ID == 0
  labels = np.array([[constants.PAD_ID, 2]], "int32")
  _, weight_sum = losses.padded_cross_entropy(np.zeros((1, 2, 3), "float32"), labels)
  assert float(weight_sum) == 1.0


def test_padding_positions_do_not_change_the_loss():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 4, 5)).astype("float32")
  labels = np.array([[2, 3, 0, 0], [4, 1, 2, 0]], "int32")
  other = logits.copy()
  other[labels == 0] += 100.0 * rng.normal(size=other[labels == 0].shape)
  a = losses.padded_cross_entropy(logits, labels, 0.1)
  b = losses.padded_cross_entropy(other, labels, 0.1)
  np.testing.assert_allclose(float(a[0]), float(b[0]), rtol=1e-6)


def test_smoothed_loss_is_zero_at_the_smoothed_target():
  vocab, ls = 6, 0.2
  labels = np.array([[1, 4, 2]], "int32")
  target = np.full((1, 3, vocab), ls / (vocab - 1))
  np.put_along_axis(target, labels[..., None], 1 - ls, axis=-1)
  loss_sum, _ = losses.padded_cross_entropy(np.log(target).astype("float32"), labels, ls)
  assert abs(float(loss_sum)) < 1e-5


def test_low_precision_logits_give_float32_losses():
  import keras
  logits = keras.ops.cast(np.random.default_rng(2).normal(size=(2, 3, 4)), "bfloat16")
  labels = np.array([[1, 2, 0], [3, 0, 0]], "int32")
  loss_sum, weight_sum = losses.padded_cross_entropy(logits, labels, 0.1)
  assert keras.backend.standardize_dtype(loss_sum.dtype) == "float32"
  assert keras.backend.standardize_dtype(weight_sum.dtype) == "float32"
  reference = _reference(keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32"))
                         .astype("float64"), labels, 0.1)
  np.testing.assert_allclose(float(loss_sum), (reference * (labels != 0)).sum(), rtol=1e-5)


def test_class_label_cross_entropy_counts_every_example_including_class_0():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(4, 3)).astype("float32")
  labels = np.array([0, 2, 1, 0], "int32")
  loss_sum, weight_sum = losses.class_label_cross_entropy(logits, labels, 0.0)
  assert float(weight_sum) == 4.0
  expected = -_log_softmax(logits.astype("float64"))[np.arange(4), labels].sum()
  np.testing.assert_allclose(float(loss_sum), expected, rtol=1e-5)
  # [B, 1] labels read the same.
  again = losses.class_label_cross_entropy(logits, labels[:, None], 0.0)
  np.testing.assert_allclose(float(again[0]), expected, rtol=1e-5)


def test_model_loss_picks_the_loss_from_the_targets_modality():
  rng = np.random.default_rng(4)
  hparams = HParams(label_smoothing=0.1)
  seq = HParams(modality={"inputs": "symbol", "targets": "symbol"})
  cls = HParams(modality={"inputs": "image", "targets": "class_label"})
  seq_logits = rng.normal(size=(2, 3, 5)).astype("float32")
  seq_labels = np.array([[1, 2, 0], [3, 0, 0]], "int32")
  got = losses.model_loss(seq_logits, {"targets": seq_labels}, seq, hparams)
  want = losses.padded_cross_entropy(seq_logits, seq_labels, 0.1)
  np.testing.assert_allclose([float(g) for g in got], [float(w) for w in want], rtol=1e-6)
  cls_logits = rng.normal(size=(2, 5)).astype("float32")
  cls_labels = np.array([0, 3], "int32")
  got = losses.model_loss(cls_logits, {"targets": cls_labels}, cls, hparams)
  assert float(got[1]) == 2.0  # class 0 is not padding
  want = losses.class_label_cross_entropy(cls_logits, cls_labels, 0.1)
  np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-6)
  # Dicts work as well as HParams.
  got = losses.model_loss(cls_logits, {"targets": cls_labels},
                          {"modality": {"targets": "class_label"}}, {"label_smoothing": 0.1})
  np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-6)
  with pytest.raises(ValueError, match="modality"):
    losses.model_loss(cls_logits, {"targets": cls_labels},
                      HParams(modality={"targets": "video"}), hparams)


def test_label_smoothing_out_of_range_is_an_error():
  with pytest.raises(ValueError, match="label_smoothing"):
    losses.padded_cross_entropy(np.zeros((1, 1, 3), "float32"), np.ones((1, 1), "int32"), 1.0)
