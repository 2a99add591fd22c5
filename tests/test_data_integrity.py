"""A corrupt shard is named by whoever iterates `Problem.dataset`: real faults written into
shards (bytes overwritten in the middle, a cut file, a cut inside a record header, records that
pass their checksums but are not examples), read eagerly, inside `keras.Model.fit` and inside a
`tf.function`; the pipeline stays checkpointable and never reports good data."""
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import problems  # noqa: F401  (registers the built-ins)
from problems import algorithmic
from t2t_lite import registry
from t2t_lite.data import ModeKeys, generator_utils, integrity
from t2t_lite.errors import CorruptDataError
from t2t_lite.hparams import HParams

PROBLEM = "integrity_reverse_test"
BAD = "%s-train-00001-of-00003" % PROBLEM
COMMAND = "t2t-datagen --problem=%s --data_dir=" % PROBLEM


class IntegrityReverse(algorithmic.AlgorithmicReverseBinary40):
  train_size = 1500
  dev_size = 200
  test_size = 10
  num_train_shards = 3


@pytest.fixture(scope="module", autouse=True)
def _register():
  registry.register_problem(PROBLEM)(IntegrityReverse)
  yield
  registry.unregister("problem", PROBLEM)


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("good"))
  registry.problem(PROBLEM).generate_data(d, d)
  return d


def _hp(**kw):
  base = dict(batch_size=256, max_length=0, min_length_bucket=4, length_bucket_step=1.5)
  base.update(kw)
  return HParams(**base)


def _damage(path, how):
  with open(path, "rb") as f:
    raw = f.read()
  if how == "bytes_in_the_middle":
    middle = len(raw) // 2
    raw = raw[:middle] + b"\xde\xad\xbe\xef" * 4 + raw[middle + 16:]
  elif how == "truncated":
    raw = raw[:len(raw) // 2]
  elif how == "cut_in_a_header":  # tf.data alone ends such a file without an error
    raw = raw + b"\x07\x00\x00"
  elif how == "garbage_records":  # well framed, checksums pass, no tf.train.Example
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(path) as writer:
      for _ in range(30):
        writer.write(b"\xff" + rng.bytes(int(rng.integers(1, 40))))
    return
  with open(path, "wb") as f:
    f.write(raw)


@pytest.fixture(params=["bytes_in_the_middle", "truncated", "cut_in_a_header",
                        "garbage_records"])
def bad_dir(request, good_dir, tmp_path):
  d = str(tmp_path / "data")
  shutil.copytree(good_dir, d)
  _damage(os.path.join(d, BAD), request.param)
  return d


def _assert_names_the_shard(message, data_dir):
  assert os.path.join(data_dir, BAD) in message, message
  assert "corrupt or truncated" in message
  assert COMMAND + data_dir in message and "--overwrite" in message


def test_eager_iteration_raises_corrupt_data_error(bad_dir):
  ds = registry.problem(PROBLEM).dataset(ModeKeys.TRAIN, bad_dir, _hp(), repeat=False)
  with pytest.raises(CorruptDataError) as e:
    for _ in ds:
      pass
  _assert_names_the_shard(str(e.value), bad_dir)
  assert "\n" not in str(e.value)


def test_examples_iteration_raises_corrupt_data_error(bad_dir):
  with pytest.raises(CorruptDataError) as e:
    for _ in registry.problem(PROBLEM).examples(ModeKeys.TRAIN, bad_dir):
      pass
  _assert_names_the_shard(str(e.value), bad_dir)


class TinyModel(keras.Model):

  def __init__(self):
    super().__init__()
    self.embed = keras.layers.Embedding(8, 4)
    self.out = keras.layers.Dense(8)

  def call(self, features):
    return self.out(self.embed(features["inputs"]))


def test_keras_fit_error_names_the_shard(bad_dir):
  ds = registry.problem(PROBLEM).dataset(ModeKeys.TRAIN, bad_dir, _hp(), repeat=False)
  model = TinyModel()
  model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  with pytest.raises(tf.errors.OpError) as e:
    model.fit(ds.map(lambda f: (f, f["inputs"])), epochs=1, verbose=0, shuffle=False)
  _assert_names_the_shard(e.value.message, bad_dir)


def test_tf_function_loop_under_reading_errors(bad_dir, monkeypatch):
  """The trainer's way: a tf.function consumes the iterator; reading_errors turns the graph's
  error into CorruptDataError from its message alone, without reading the shards again."""
  problem = registry.problem(PROBLEM)
  it = iter(problem.dataset(ModeKeys.TRAIN, bad_dir, _hp(), repeat=False))

  @tf.function
  def consume(iterator):
    total = tf.constant(0, tf.int64)
    for _ in tf.range(1000000):
      batch = iterator.get_next_as_optional()
      if not batch.has_value():
        break
      total += tf.size(batch.get_value()["inputs"], tf.int64)
    return total

  monkeypatch.setattr(integrity, "shard_problem", lambda *a, **k: pytest.fail("read again"))
  with pytest.raises(CorruptDataError) as e:
    with problem.reading_errors(bad_dir):
      consume(it)
  _assert_names_the_shard(str(e.value), bad_dir)


@pytest.mark.parametrize("how", ["bytes_in_the_middle", "cut_in_a_header", "garbage_records"])
def test_check_shards_names_the_shard(good_dir, tmp_path, how):
  d = str(tmp_path / "data")
  shutil.copytree(good_dir, d)
  problem = registry.problem(PROBLEM)
  counts = problem.check_shards(d)
  assert counts == {"train": 1500, "dev": 200, "test": 10}
  _damage(os.path.join(d, BAD), how)
  with pytest.raises(CorruptDataError) as e:
    problem.check_shards(d)
  _assert_names_the_shard(str(e.value), d)
  assert problem.find_unparsable_shard(d) == os.path.join(d, BAD)
  if how != "garbage_records":  # without a spec, only the framing is checked
    with pytest.raises(CorruptDataError, match=BAD):
      generator_utils.check_shard(os.path.join(d, BAD))


def test_a_bare_data_loss_error_is_diagnosed_by_reading_the_shards(bad_dir):
  """An error that does not carry the pipeline's message (here, raised by hand as tf.data
  raises it) is still turned into CorruptDataError naming the shard."""
  problem = registry.problem(PROBLEM)
  with pytest.raises(CorruptDataError) as e:
    with problem.reading_errors(bad_dir, ["train"]):
      raise tf.errors.DataLossError(None, None, "corrupted record at 12")
  _assert_names_the_shard(str(e.value), bad_dir)
  with pytest.raises(tf.errors.InvalidArgumentError):  # not a data error: left alone
    with problem.reading_errors(bad_dir, ["train"]):
      raise tf.errors.InvalidArgumentError(None, None, "shapes [2] and [3] differ")


@pytest.mark.parametrize("split", ["train", "dev"])  # three files interleaved / one file
def test_good_data_reads_whole_in_any_order(good_dir, split):
  problem = registry.problem(PROBLEM)
  for deterministic in (True, False):
    ds = problem.examples(ModeKeys.TRAIN, good_dir, split=split, shuffle=True,
                          deterministic=deterministic)
    assert sum(1 for _ in ds) == {"train": 1500, "dev": 200}[split]
  batches = problem.dataset(ModeKeys.EVAL, good_dir, _hp(), split=split)
  assert sum(int(b["inputs"].shape[0]) for b in batches) == {"train": 1500, "dev": 200}[split]


def test_training_iterator_checkpoint_saves_and_restores(good_dir, tmp_path):
  problem = registry.problem(PROBLEM)
  ds = problem.dataset(ModeKeys.TRAIN, good_dir, _hp(), seed=3)
  it = iter(ds)
  for _ in range(5):
    next(it)
  path = tf.train.Checkpoint(iterator=it).save(str(tmp_path / "ckpt"))
  expected = [next(it)["inputs"].numpy() for _ in range(4)]
  fresh = iter(problem.dataset(ModeKeys.TRAIN, good_dir, _hp(), seed=3))
  tf.train.Checkpoint(iterator=fresh).restore(path).assert_consumed()
  for want in expected:
    np.testing.assert_array_equal(next(fresh)["inputs"].numpy(), want)
