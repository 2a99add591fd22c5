"""The training loss of every model: one place, used by the trainer and the tests alike.

Each loss returns a pair `(loss_sum, weight_sum)` of float32 scalars rather than a mean. The
trainer adds the pairs of all replicas (and of all steps it accumulates) and divides once, by
the GLOBAL weight sum, so a batch with many padding tokens on one replica does not count more
than its real tokens:

    loss_sum, weight_sum = losses.model_loss(logits, features, problem_hparams, hparams)
    loss = loss_sum / weight_sum          # one replica, one batch

Everything is computed in float32, whatever the dtype of the logits (mixed precision gives
bfloat16 or float16 activations; the softmax over a large vocabulary is not one of them).
"""
import math

from keras import ops

from t2t_lite import common_hparams
# Padding id of every symbol feature (defined in t2t_lite.constants): labels with it get weight 0.
from t2t_lite.constants import PAD_ID


def _smoothing_constants(num_classes, label_smoothing):
  """(confidence, low_confidence, normalizer) of tensor2tensor's smoothed cross-entropy.

  The target distribution puts `confidence = 1 - label_smoothing` on the label and
  `label_smoothing / (num_classes - 1)` on every other class. The normalizer is that
  distribution's entropy; subtracting it makes a perfect prediction cost exactly 0, so the
  reported loss is comparable across label_smoothing values.
  """
  label_smoothing = float(label_smoothing)
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError("label_smoothing must be in [0, 1), got %r." % label_smoothing)
  confidence = 1.0 - label_smoothing
  if num_classes <= 1 or label_smoothing == 0.0:
    return confidence, 0.0, 0.0
  low_confidence = label_smoothing / float(num_classes - 1)
  normalizer = -(confidence * math.log(confidence) +
                 (num_classes - 1) * low_confidence * math.log(low_confidence))
  return confidence, low_confidence, normalizer


def smoothed_cross_entropy(logits, labels, label_smoothing=0.0):
  """Per-position cross-entropy with label smoothing, in float32.

  Written without a one-hot tensor: with q the smoothed target and p = log_softmax(logits),
  `-sum(q * p) = -(confidence - low) * p[label] - low * sum(p)`.

  Args:
    logits: float tensor [..., num_classes] (any float dtype).
    labels: int tensor [...] of class ids in [0, num_classes).
    label_smoothing: float in [0, 1).

  Returns:
    float32 tensor [...]: the loss of each position (0 for a perfect prediction).
  """
  logits = ops.cast(logits, "float32")
  num_classes = logits.shape[-1]
  if num_classes is None:
    raise ValueError("The last axis of the logits (the classes) must have a static size.")
  confidence, low, normalizer = _smoothing_constants(num_classes, label_smoothing)
  log_probs = ops.log_softmax(logits, axis=-1)
  labels = ops.cast(labels, "int32")
  label_log_prob = ops.squeeze(
      ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1), -1)
  loss = -(confidence - low) * label_log_prob
  if low:
    loss = loss - low * ops.sum(log_probs, axis=-1)
  return loss - normalizer


def padded_cross_entropy(logits, labels, label_smoothing=0.0, weights=None):
  """Cross-entropy over a padded sequence: (loss_sum, weight_sum), both float32 scalars.

  Args:
    logits: float tensor [batch, length, vocab] (or any [..., vocab]).
    labels: int tensor [batch, length]; id 0 (PAD_ID) is padding and gets weight 0.
    label_smoothing: float in [0, 1); see `smoothed_cross_entropy`.
    weights: optional float tensor shaped like `labels` that replaces the padding weights.

  Returns:
    (loss_sum, weight_sum): the weighted sum of the per-token losses and the sum of the
    weights (the number of real tokens).

  Example:

  >>> loss_sum, n = padded_cross_entropy(logits, features["targets"], 0.1)
  >>> mean_loss = loss_sum / n
  """
  if weights is None:
    weights = ops.cast(ops.not_equal(labels, PAD_ID), "float32")
  else:
    weights = ops.cast(weights, "float32")
  loss = smoothed_cross_entropy(logits, labels, label_smoothing)
  return ops.sum(loss * weights), ops.sum(weights)


def class_label_cross_entropy(logits, labels, label_smoothing=0.0):
  """Cross-entropy for one class per example: (loss_sum, number of examples), float32.

  Every example has weight 1 (class 0 is a real class here, not padding).

  Args:
    logits: float tensor [batch, num_classes].
    labels: int tensor [batch] (a trailing axis of size 1, [batch, 1], is accepted).
    label_smoothing: float in [0, 1).
  """
  labels = ops.reshape(labels, (-1,))
  loss = smoothed_cross_entropy(ops.reshape(logits, (-1, logits.shape[-1])), labels,
                                label_smoothing)
  return ops.sum(loss), ops.cast(ops.shape(labels)[0], "float32")


def real_l2_loss(predictions, targets):
  """Squared error for real-valued targets: (sum over examples of the summed squared error,
  number of examples), float32."""
  predictions = ops.cast(predictions, "float32")
  targets = ops.cast(targets, "float32")
  error = ops.reshape(ops.square(predictions - targets), (ops.shape(targets)[0], -1))
  return ops.sum(error), ops.cast(ops.shape(targets)[0], "float32")


def _get(hp, name, default=None):
  if isinstance(hp, dict):
    return hp.get(name, default)
  return getattr(hp, name, default)


def target_modality(problem_hparams):
  """The problem's targets modality: "symbol" (the default), "class_label" or "real"."""
  modality = _get(problem_hparams, "modality", None) or {}
  return modality.get("targets", "symbol")


def model_loss(logits, features, problem_hparams, hparams):
  """The loss of a model's output for a batch: (loss_sum, weight_sum), float32.

  Picks the loss from the problem's targets modality: `padded_cross_entropy` for "symbol"
  (padding-weighted), `class_label_cross_entropy` for "class_label", `real_l2_loss` for
  "real"; label smoothing comes from `hparams.label_smoothing`.

  Args:
    logits: the model's output for `features`.
    features: the batch dict; its "targets" are the labels.
    problem_hparams: the problem's hparams (or a dict) with `modality`.
    hparams: the model hparams (or a dict), for `label_smoothing`.
  """
  targets = features["targets"]
  modality = target_modality(problem_hparams)
  label_smoothing = common_hparams.get(hparams, "label_smoothing")
  if modality == "class_label":
    return class_label_cross_entropy(logits, targets, label_smoothing)
  if modality == "real":
    return real_l2_loss(logits, targets)
  if modality == "symbol":
    return padded_cross_entropy(logits, targets, label_smoothing)
  raise ValueError("Unknown targets modality %r; expected 'symbol', 'class_label' or 'real'."
                   % (modality,))


__all__ = ["PAD_ID", "smoothed_cross_entropy", "padded_cross_entropy",
           "class_label_cross_entropy", "real_l2_loss", "target_modality", "model_loss"]
