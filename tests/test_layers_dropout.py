"""Tests of t2t_lite's dropout (16 random bits per element)."""
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.layers import Dropout
from t2t_lite.layers import dropout
from t2t_lite.layers.xla_context import in_xla_context

dropout_lib = importlib.import_module("t2t_lite.layers.dropout")


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_drop_rate_and_scale(rate):
  x = np.ones((400, 500), "float32")
  y = np.asarray(dropout(x, rate, keras.random.SeedGenerator(3)))
  dropped = np.mean(y == 0.0)
  assert abs(dropped - rate) < 0.005  # 200k draws: ~4 standard deviations
  kept = y[y != 0.0]
  np.testing.assert_allclose(kept, 1.0 / (1.0 - rate), rtol=1e-4)
  assert abs(y.mean() - 1.0) < 0.02  # the expectation is kept


def test_seeded_and_advancing():
  x = np.ones((64, 33), "float32")  # an odd number of elements
  a = keras.random.SeedGenerator(7)
  b = keras.random.SeedGenerator(7)
  first, second = np.asarray(dropout(x, 0.3, a)), np.asarray(dropout(x, 0.3, a))
  np.testing.assert_array_equal(first, np.asarray(dropout(x, 0.3, b)))
  assert not np.array_equal(first == 0, second == 0)
  assert first.shape == x.shape


def test_rate_zero_is_identity_and_gradient_is_the_mask():
  x = tf.constant(np.random.randn(8, 16).astype("float32"))
  assert dropout(x, 0.0, keras.random.SeedGenerator(1)) is x
  seed = keras.random.SeedGenerator(5)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = dropout(x, 0.25, seed)
  grad = tape.gradient(y, x).numpy()
  mask = (y.numpy() != 0).astype("float32")
  np.testing.assert_allclose(grad, mask / (1 - 0.25), rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_dtypes(dtype):
  x = keras.ops.ones((32, 32), dtype)
  y = dropout(x, 0.2, keras.random.SeedGenerator(2))
  assert keras.backend.standardize_dtype(y.dtype) == dtype
  assert 0.1 < float(np.mean(np.asarray(keras.ops.cast(y, "float32")) == 0)) < 0.3


def test_layer_only_in_training_and_serializes():
  layer = Dropout(0.4, seed=11)
  x = np.ones((10, 50), "float32")
  np.testing.assert_array_equal(layer(x), x)
  np.testing.assert_array_equal(layer(x, training=False), x)
  y = np.asarray(layer(x, training=True))
  assert 0.2 < np.mean(y == 0) < 0.6
  clone = keras.layers.deserialize(keras.layers.serialize(layer))
  assert isinstance(clone, Dropout) and clone.rate == 0.4 and clone.seed == 11
  np.testing.assert_array_equal(np.asarray(clone(x, training=True)) == 0, y == 0)


def test_jit_compiled():
  seed = keras.random.SeedGenerator(4)
  fn = tf.function(lambda v: dropout(v, 0.5, seed), jit_compile=True)
  y = fn(tf.ones((16, 16))).numpy()
  assert set(np.unique(y)) <= {0.0, 2.0} and 0 < np.mean(y == 0) < 1


def test_rate_one_drops_everything():
  x = np.ones((16, 16), "float32")
  np.testing.assert_array_equal(dropout(x, 1.0, keras.random.SeedGenerator(1)), 0.0)
  np.testing.assert_array_equal(Dropout(1.0)(x, training=True), 0.0)


def _xla_dropout(x, rate, seed):
  return tf.function(lambda v: dropout(v, rate, seed), jit_compile=True)(x).numpy()


def test_xla_uses_the_hashed_bits_with_the_same_rate_and_scale():
  """Under XLA the keep decisions come from the index hash: other bits than the TF path's,
  the same rate and scale, seeded, advancing, and without structure between neighbours."""
  x = np.ones((500, 800), "float32")
  seed = keras.random.SeedGenerator(3)
  y = _xla_dropout(x, 0.1, seed)
  drop = (y == 0).ravel()
  assert abs(drop.mean() - 0.1) < 0.0015  # 400k draws: ~4 standard deviations
  np.testing.assert_allclose(y[y != 0], 1.0 / 0.9, rtol=1e-4)
  # Neighbours (index i and i + 1, and i + 800: the next row) are independent: both dropped
  # with probability rate**2.
  for lag in (1, 2, 800):
    assert abs(np.mean(drop[:-lag] & drop[lag:]) - 0.01) < 0.0007
  again = _xla_dropout(x, 0.1, seed)
  assert abs(np.mean((again == 0) & (y == 0)) - 0.01) < 0.0015  # the next call: a new mask
  np.testing.assert_array_equal(_xla_dropout(x, 0.1, keras.random.SeedGenerator(3)) == 0,
                                y == 0)


def _np_fmix32(h):
  h = h ^ (h >> 16)
  h = (h * 0x85EBCA6B) & 0xFFFFFFFF
  h = h ^ (h >> 13)
  h = (h * 0xC2B2AE35) & 0xFFFFFFFF
  return h ^ (h >> 16)


def test_hashed_bits_and_when_they_are_used():
  seen = {}

  def probe(name):
    def fn(v):
      seen[name] = in_xla_context()
      return v
    return fn

  tf.function(probe("xla"), jit_compile=True)(tf.ones(2))
  tf.function(probe("graph"))(tf.ones(2))
  probe("eager")(tf.ones(2))
  assert seen == {"xla": True, "graph": False, "eager": False}
  seed = tf.constant([12345, -7], tf.int32)
  bits = dropout_lib._hashed_bits(1000, seed).numpy()  # pylint: disable=protected-access
  index = np.arange(1000, dtype=np.int64)
  words = [12345, (-7) & 0xFFFFFFFF]
  expected = _np_fmix32(_np_fmix32((index * 0x9E3779B9 + words[0]) & 0xFFFFFFFF) ^ words[1])
  np.testing.assert_array_equal(bits.astype(np.int64), expected)
  assert _np_fmix32(np.int64(1)) == 0x514E28B7  # MurmurHash3's finalizer, a known value
  assert len(np.unique(bits)) == 1000


def test_xla_dropout_gradient_is_the_mask():
  seed = keras.random.SeedGenerator(9)
  x = tf.constant(np.random.randn(33, 17).astype("float32"))  # an odd number of elements

  @tf.function(jit_compile=True)
  def forward_backward(v):
    with tf.GradientTape() as tape:
      tape.watch(v)
      y = dropout(v, 0.3, seed)
    return y, tape.gradient(y, v)

  y, grad = (t.numpy() for t in forward_backward(x))
  np.testing.assert_allclose(grad, (y != 0) / 0.7, rtol=1e-4)
  np.testing.assert_allclose(y[y != 0], x.numpy()[y != 0] / 0.7, rtol=1e-5)


def test_xla_with_unknown_shapes_uses_the_same_bits():
  """The trainer traces with [None, None] batches; XLA compiles each shape, and the mask must
  be the hashed one there too (the same as with a static shape and the same seed)."""
  x = np.ones((37, 29), "float32")
  static = _xla_dropout(x, 0.2, keras.random.SeedGenerator(6))
  seed = keras.random.SeedGenerator(6)
  dynamic = tf.function(lambda v: dropout(v, 0.2, seed), jit_compile=True,
                        input_signature=[tf.TensorSpec([None, None], tf.float32)])
  np.testing.assert_array_equal(dynamic(x).numpy(), static)
