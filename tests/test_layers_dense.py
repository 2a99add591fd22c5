"""Tests of t2t_lite.layers.Dense and its FanInUniform initializer."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.layers import Dense
from t2t_lite.layers import dense as dense_lib
from t2t_lite.layers import FanInUniform
from t2t_lite.layers.testing import run_layer_checks


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5)])
def test_gradients_equal_closed_forms(shape):
  layer = Dense(7, bias_initializer="random_normal")
  x = np.random.randn(*shape).astype("float32")
  layer.build(shape)
  upstream = np.random.randn(*shape[:-1], 7).astype("float32")
  x_t = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(x_t)
    loss = tf.reduce_sum(layer(x_t) * upstream)  # dL/dy == upstream
  grad_x, grad_kernel, grad_bias = tape.gradient(loss, [x_t, layer.kernel, layer.bias])
  kernel = np.asarray(layer.kernel)
  x2, g2 = x.reshape(-1, 5), upstream.reshape(-1, 7)
  np.testing.assert_allclose(grad_kernel, x2.T @ g2, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grad_bias, g2.sum(axis=0), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grad_x, (g2 @ kernel.T).reshape(x.shape), rtol=1e-5, atol=1e-5)
  # and the forward pass is x W + b
  np.testing.assert_allclose(layer(x), (x2 @ kernel + np.asarray(layer.bias)).reshape(
      *shape[:-1], 7), rtol=1e-5, atol=1e-5)


def test_initial_values_inside_the_fan_in_bound():
  layer = Dense(64)
  layer.build((None, 100))
  kernel = np.asarray(layer.kernel)
  bound = 1.0 / np.sqrt(100)
  assert np.all(np.abs(kernel) <= bound)
  # uniform over the whole interval: the extremes are reached, the variance is bound^2 / 3
  assert kernel.max() > 0.95 * bound and kernel.min() < -0.95 * bound
  assert abs(kernel.var() - bound ** 2 / 3) < 0.1 * bound ** 2 / 3
  np.testing.assert_array_equal(np.asarray(layer.bias), np.zeros(64))
  # two layers draw different kernels
  other = Dense(64)
  other.build((None, 100))
  assert not np.allclose(kernel, np.asarray(other.kernel))


def test_fan_in_uniform_is_serializable_and_seeded():
  init = FanInUniform(seed=3)
  config = keras.initializers.serialize(init)
  restored = keras.initializers.deserialize(config)
  assert isinstance(restored, FanInUniform)
  np.testing.assert_array_equal(np.asarray(init((16, 4))), np.asarray(restored((16, 4))))
  assert np.abs(np.asarray(init((16, 4)))).max() <= 0.25


def test_count_params():
  layer = Dense(6)
  layer.build((None, None, 9))
  assert layer.count_params() == 9 * 6 + 6
  no_bias = Dense(6, use_bias=False)
  no_bias.build((None, 9))
  assert no_bias.count_params() == 9 * 6


def test_common_checks_and_keras_round_trip():
  x = np.random.randn(2, 3, 8).astype("float32")
  layer = run_layer_checks(Dense, {"units": 5, "activation": "relu"}, x, (2, 3, 5))
  config = layer.get_config()
  assert config["units"] == 5 and config["activation"] == "relu"
  assert isinstance(Dense.from_config(config).kernel_initializer, FanInUniform)


def test_rank_one_input_is_rejected():
  with pytest.raises(ValueError):
    Dense(3)(np.ones((4,), "float32"))


def test_lora_still_works():
  layer = Dense(4)
  x = np.random.randn(3, 6).astype("float32")
  before = np.asarray(layer(x))
  layer.enable_lora(rank=2)
  np.testing.assert_allclose(layer(x), before, atol=1e-6)  # lora_kernel_b starts at zero
  assert {w.name for w in layer.trainable_weights} == {"lora_kernel_a", "lora_kernel_b", "bias"}
  b = np.random.randn(2, 4).astype("float32")
  layer.lora_kernel_b.assign(b)
  a = np.asarray(layer.lora_kernel_a)
  expected = before + x @ (a @ b) * (layer.lora_alpha / layer.lora_rank)
  np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_int8_quantization_still_works():
  layer = Dense(16)
  x = np.random.randn(4, 32).astype("float32")
  before = np.asarray(layer(x))
  layer.quantize("int8")
  assert keras.backend.standardize_dtype(layer._kernel.dtype) == "int8"
  after = np.asarray(layer(x))
  assert not np.array_equal(after, before)  # really quantized ...
  np.testing.assert_allclose(after, before, atol=0.05 * np.abs(before).max())  # ... and close


def test_column_sizes():
  assert dense_lib.column_sizes(512, 2) == [256, 256]
  assert dense_lib.column_sizes(130, 3, min_width=32) == [44, 43, 43]
  assert dense_lib.column_sizes(96, 4, min_width=32) == [32, 32, 32]  # blocks of >= 32
  assert dense_lib.column_sizes(96, 4) == [96]  # by default blocks of at least 64 columns
  assert dense_lib.column_sizes(128, 8) == [64, 64]
  assert dense_lib.column_sizes(512, 1) == [512]


def _matmuls(fn, *args):
  graph = tf.function(fn).get_concrete_function(*args).graph
  return sum(op.type in ("MatMul", "BatchMatMulV3") for op in graph.get_operations())


def test_column_parallel_computes_the_same_in_independent_blocks():
  keras.utils.set_random_seed(1)
  inner = Dense(96, activation="relu", bias_initializer="random_normal")
  outer = Dense(64, bias_initializer="random_normal")
  small = Dense(40)  # too narrow to cut into blocks of 32 columns
  x = tf.constant(np.random.randn(5, 24).astype("float32"))
  for layer, width in ((inner, 24), (outer, 96), (small, 24)):
    layer.build((None, width))
  expected = outer(inner(x))

  def blocked_with(layer, fn):
    def run(x):
      with dense_lib.column_parallel([inner, outer, small, layer], 3, min_width=32):
        return fn(x)
    return run

  def blocked(fn):
    return blocked_with(inner, fn)

  plain = blocked(lambda x: outer(inner(x)))
  joined = blocked(lambda x: outer.join_inputs(inner.split_outputs(x)))
  narrow = blocked(small)
  np.testing.assert_allclose(plain(x), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(joined(x), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(narrow(x), small(x), rtol=1e-6)
  # inner: 3 column blocks of 32; outer: 2 of 32 (concatenated), or fed by inner's 3 blocks
  # through its 3 blocks of rows; small stays one matmul.
  assert len(inner.split_outputs(x)) == 1  # outside the block: the plain layer
  assert _matmuls(lambda x: outer(inner(x)), x) == 2
  assert _matmuls(plain, x) == 3 + 2
  assert _matmuls(joined, x) == 3 + 3
  assert _matmuls(narrow, x) == 1
  # A layer too narrow to cut into columns still takes blocks of its input rows.
  narrow_out = Dense(16)
  narrow_out.build((None, 96))
  joined_narrow = blocked_with(narrow_out, lambda x: narrow_out.join_inputs(
      inner.split_outputs(x)))
  np.testing.assert_allclose(joined_narrow(x), narrow_out(inner(x)), rtol=1e-5, atol=1e-5)
  assert _matmuls(joined_narrow, x) == 3 + 3
  with dense_lib.column_parallel(inner, 1):  # one part: nothing changes
    assert dense_lib.blocks_of(inner) is None
  assert dense_lib.blocks_of(inner) is None  # the table is left as it was


def test_column_parallel_leaves_lora_and_quantized_layers_whole():
  plain, lora, quantized = Dense(128), Dense(128), Dense(128)
  for layer in (plain, lora, quantized):
    layer.build((None, 8))
  lora.enable_lora(rank=2)
  quantized.quantize("int8")
  with dense_lib.column_parallel([plain, lora, quantized], 2):
    assert [c.shape[-1] for c in dense_lib.blocks_of(plain).columns] == [64, 64]
    assert dense_lib.blocks_of(lora) is None and dense_lib.blocks_of(quantized) is None
