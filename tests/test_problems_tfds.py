"""TFDS-backed problems, on tfds.testing.mock_data (nothing is downloaded)."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import problems  # noqa: F401
from t2t_lite import registry
from t2t_lite.data import ModeKeys
from t2t_lite.errors import DataNotFoundError
from t2t_lite.hparams import HParams


@pytest.fixture(autouse=True)
def _no_tfds_env(monkeypatch, tmp_path):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_env"))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_image_mnist_hparams_and_batches(tmp_path):
  p = registry.problem("image_mnist")
  before = dict(vars(p))
  with tfds.testing.mock_data(num_examples=20):
    hp = p.get_hparams()
    assert hp.modality == {"inputs": "image", "targets": "class_label"}
    assert hp.vocab_size["targets"] == 10
    assert p.eval_metrics() == ["accuracy"]
    ds = p.dataset(ModeKeys.TRAIN, str(tmp_path), HParams(batch_size=8), seed=0)
    assert ds.element_spec["inputs"].shape.as_list() == [None, 28, 28, 1]
    batch = next(iter(ds))
    assert batch["inputs"].dtype == tf.float32 and batch["inputs"].shape == (8, 28, 28, 1)
    assert 0.0 <= float(tf.reduce_min(batch["inputs"])) <= float(
        tf.reduce_max(batch["inputs"])) <= 1.0
    assert batch["targets"].dtype == tf.int32 and batch["targets"].shape == (8,)
    fixed = p.dataset(ModeKeys.EVAL, str(tmp_path), HParams(batch_size=8,
                                                            fixed_batch_shapes=True))
    assert fixed.element_spec["inputs"].shape.as_list() == [8, 28, 28, 1]
    enc = p.feature_encoders(str(tmp_path))["targets"]
    assert enc.decode([3]) == "3"
  assert vars(p) == before  # reading stores nothing on the problem


def test_image_mnist_per_worker_sharding(tmp_path):
  p = registry.problem("image_mnist")
  with tfds.testing.mock_data(num_examples=12):
    def labels(ctx):
      ds = p.dataset(ModeKeys.EVAL, str(tmp_path), HParams(batch_size=100), input_context=ctx)
      return [int(x) for b in ds for x in b["targets"].numpy()]
    whole = labels(None)
    parts = [labels(tf.distribute.InputContext(2, i, 2)) for i in range(2)]
    assert len(parts[0]) == len(parts[1]) == 6
    assert sorted(parts[0] + parts[1]) == sorted(whole)


def test_sentiment_imdb_bytes(tmp_path):
  p = registry.problem("sentiment_imdb")
  with tfds.testing.mock_data(num_examples=10):
    hp = p.get_hparams()
    assert hp.vocab_size == {"inputs": 258, "targets": 2}
    assert hp.modality == {"inputs": "symbol", "targets": "class_label"}
    ds = p.dataset(ModeKeys.TRAIN, str(tmp_path), HParams(batch_size=4, max_length=16), seed=1)
    batch = next(iter(ds))
    inputs = batch["inputs"].numpy()
    assert inputs.dtype == np.int32 and inputs.shape[0] == 4 and inputs.shape[1] <= 16
    lengths = (inputs > 0).sum(1)
    assert all(inputs[i, lengths[i] - 1] == 1 for i in range(4))  # EOS after the cut
    assert set(batch["targets"].numpy()) <= {0, 1}
    assert p.feature_encoders(str(tmp_path))["targets"].decode([1]) == "pos"


def test_sentiment_imdb_subwords_vocab_from_datagen(tmp_path):
  p = registry.problem("sentiment_imdb_subwords")
  d = str(tmp_path)
  with tfds.testing.mock_data(num_examples=10):
    with pytest.raises(DataNotFoundError, match="t2t-datagen --problem=sentiment_imdb_subwords"):
      p.get_hparams(data_dir=d)
    p.generate_data(d, d)
    assert os.path.exists(os.path.join(d, "vocab.sentiment_imdb_subwords.8192.subwords"))
    hp = p.get_hparams(data_dir=d)
    enc = p.feature_encoders(d)["inputs"]
    assert hp.vocab_size["inputs"] == enc.vocab_size
    batch = next(iter(p.dataset(ModeKeys.EVAL, d, HParams(batch_size=2, max_length=64))))
    assert batch["inputs"].dtype == tf.int32 and batch["inputs"].shape[0] == 2


def test_missing_tfds_data_says_how_to_prepare(tmp_path):
  p = registry.problem("image_mnist")
  assert not p.data_exists(str(tmp_path))
  with pytest.raises(DataNotFoundError) as e:
    p.dataset(ModeKeys.TRAIN, str(tmp_path), HParams(batch_size=8))
  msg = str(e.value)
  assert "'mnist'" in msg and str(tmp_path) in msg
  assert "tfds build mnist" in msg and "TFDS_DATA_DIR" in msg
