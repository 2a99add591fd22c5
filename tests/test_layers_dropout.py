"""Tests of t2t_lite's dropout (16 random bits per element)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.layers import Dropout
from t2t_lite.layers import dropout


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
