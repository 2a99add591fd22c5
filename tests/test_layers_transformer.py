"""Tests of TokenEmbedding and the Transformer encoder/decoder blocks."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.layers import TokenEmbedding
from t2t_lite.layers import TransformerDecoderBlock
from t2t_lite.layers import TransformerEncoderBlock
from t2t_lite.layers import get_timing_signal_1d
from t2t_lite.layers.testing import run_layer_checks


def _randn(*shape):
  return np.random.randn(*shape).astype("float32")


def _t2t_timing_signal(length, channels, start=0):
  """tensor2tensor's get_timing_signal_1d, written out in NumPy."""
  position = np.arange(length, dtype=np.float64) + start
  num_timescales = channels // 2
  log_increment = math.log(1.0e4 / 1.0) / max(num_timescales - 1, 1)
  inv_timescales = np.exp(np.arange(num_timescales) * -log_increment)
  scaled_time = position[:, None] * inv_timescales[None, :]
  signal = np.concatenate([np.sin(scaled_time), np.cos(scaled_time)], axis=1)
  return np.pad(signal, [[0, 0], [0, channels % 2]])


# --- TokenEmbedding ---------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [8, 9])
def test_timing_signal_is_tensor2tensors(channels):
  np.testing.assert_allclose(get_timing_signal_1d(np.arange(12), channels),
                             _t2t_timing_signal(12, channels), atol=1e-5)


@pytest.mark.parametrize("position", ["sinusoidal", "learned", None])
def test_token_embedding_common_checks(position):
  ids = np.array([[1, 5, 3, 0], [2, 2, 0, 0]], "int32")
  run_layer_checks(TokenEmbedding, {"vocab_size": 10, "hidden_size": 8, "position": position,
                                    "max_length": 16}, ids, (2, 4, 8))


def test_token_embedding_values_mask_and_logits():
  embed = TokenEmbedding(10, 8)
  ids = np.array([[1, 5, 3, 0], [2, 2, 0, 0]], "int32")
  out = embed(ids)
  table = np.asarray(embed.embeddings)
  expected = table[ids] * math.sqrt(8) + _t2t_timing_signal(4, 8)[None]
  np.testing.assert_allclose(out, expected, atol=1e-5)
  np.testing.assert_array_equal(embed.compute_mask(ids), ids != 0)
  np.testing.assert_array_equal(out._keras_mask, ids != 0)
  np.testing.assert_allclose(embed.logits(out), np.asarray(out) @ table.T, atol=1e-5)
  unscaled = TokenEmbedding(10, 8, position=None, scale=False)
  np.testing.assert_allclose(unscaled(ids), np.asarray(unscaled.embeddings)[ids], atol=1e-6)


def test_transposed_output_weights_give_the_same_logits_from_a_stored_table():
  from t2t_lite.layers import embedding as embedding_lib  # pylint: disable=g-import-not-at-top
  embed, other = TokenEmbedding(10, 8), TokenEmbedding(10, 8)
  x = _randn(3, 1, 8)
  embed(np.ones([1, 1], "int32"))
  want = np.asarray(x) @ np.asarray(embed.embeddings).T
  logits = tf.function(embed.logits)  # traced inside the block: reads the table it was given
  with embedding_lib.transposed_output_weights([embed, other]):  # other is not built: skipped
    np.testing.assert_allclose(logits(x), want, atol=1e-5)
  copies = embedding_lib.transposed_output_copies(embed)
  (copy,) = copies.values()
  assert not copy.trainable
  np.testing.assert_array_equal(np.asarray(copy), np.asarray(embed.embeddings).T)
  # The block uses the table it is given (a changed one shows it), and a block inside it
  # keeps the outer table rather than transposing the weights again.
  copy.assign(np.asarray(copy) * 2.0)
  with embedding_lib.transposed_output_weights(embed, copies):
    with embedding_lib.transposed_output_weights(embed):
      np.testing.assert_allclose(embed.logits(x), 2.0 * want, atol=1e-5)
  np.testing.assert_allclose(embed.logits(x), want, atol=1e-5)  # outside: the weights


@pytest.mark.parametrize("position", ["sinusoidal", "learned"])
def test_token_embedding_start_index_offsets_positions(position):
  embed = TokenEmbedding(10, 8, position=position, max_length=8)
  ids = np.array([[1, 5, 3, 4, 7]], "int32")
  full = np.asarray(embed(ids))
  step = tf.function(lambda i, start: embed(i, start_index=start))
  for start in range(5):
    np.testing.assert_allclose(step(ids[:, start:start + 1], tf.constant(start)),
                               full[:, start:start + 1], atol=1e-5)


def test_token_embedding_rejects_bad_arguments():
  with pytest.raises(ValueError, match="position"):
    TokenEmbedding(10, 8, position="rotary")
  with pytest.raises(ValueError, match="max_length"):
    TokenEmbedding(10, 8, position="learned")
  with pytest.raises(ValueError, match="rank 2"):
    TokenEmbedding(10, 8)(np.ones((2, 3, 1), "int32"))


# --- encoder block ---------------------------------------------------------------------------

_BLOCK_ARGS = {"num_heads": 2, "filter_size": 16}


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_common_checks(norm_first):
  run_layer_checks(TransformerEncoderBlock,
                   dict(_BLOCK_ARGS, dropout=0.1, norm_first=norm_first,
                        kernel_initializer=None if norm_first else "glorot_uniform"),
                   _randn(2, 5, 8), (2, 5, 8))


def _layer_norm(x, epsilon=1e-6):
  mean = x.mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + epsilon)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_norm_placement(norm_first):
  """Pre-norm: x + f(LN(x)) per sublayer; post-norm: LN(x + f(x)) (fresh LNs are identity
  gain and zero bias)."""
  block = TransformerEncoderBlock(**_BLOCK_ARGS, norm_first=norm_first)
  x = _randn(2, 5, 8)
  out = np.asarray(block(x))
  attention = lambda h: np.asarray(block._attention(h))  # noqa: E731
  ffn = lambda h: np.asarray(block._ffn_outer(block._ffn_inner(h)))  # noqa: E731
  if norm_first:
    h = x + attention(_layer_norm(x))
    expected = h + ffn(_layer_norm(h))
  else:
    h = _layer_norm(x + attention(x))
    expected = _layer_norm(h + ffn(h))
  np.testing.assert_allclose(out, expected, atol=1e-4)


def test_block_kernel_initializer_reaches_every_kernel():
  block = TransformerDecoderBlock(**_BLOCK_ARGS, kernel_initializer="ones")
  block(_randn(1, 3, 8), _randn(1, 4, 8))
  kernels = [w for w in block.weights if w.path.endswith("kernel")]
  assert len(kernels) == 7  # fused qkv + output, query + kv + output, two FFN layers
  for kernel in kernels:
    np.testing.assert_array_equal(np.asarray(kernel), 1.0)
  default = TransformerEncoderBlock(**_BLOCK_ARGS)
  default(_randn(1, 3, 8))
  assert default.get_config()["kernel_initializer"] is None
  # FanInUniform: within +-1/sqrt(fan_in) (8 for every kernel but the FFN's outer one)
  assert np.abs(np.asarray(default._ffn_inner.kernel)).max() <= 8 ** -0.5


def test_encoder_block_padding_does_not_change_real_positions():
  block = TransformerEncoderBlock(**_BLOCK_ARGS)
  x = _randn(2, 6, 8)
  mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
  out = np.asarray(block(x, mask=mask))
  x_other_padding = x.copy()
  x_other_padding[0, 4:] = 100.0
  out_other = np.asarray(block(x_other_padding, mask=mask))
  np.testing.assert_allclose(out_other[0, :4], out[0, :4], atol=1e-5)
  np.testing.assert_allclose(np.asarray(block(x[:1, :4]))[0], out[0, :4], atol=1e-5)
  # without the mask the padding would matter
  assert not np.allclose(np.asarray(block(x_other_padding))[0, :4], out[0, :4], atol=1e-3)


def test_encoder_block_takes_the_keras_mask():
  inputs = keras.Input((None,), dtype="int32")
  outputs = TransformerEncoderBlock(**_BLOCK_ARGS)(TokenEmbedding(12, 8)(inputs))
  model = keras.Model(inputs, outputs)
  ids = np.array([[3, 4, 5, 0, 0]])
  np.testing.assert_allclose(np.asarray(model(ids))[0, :3], np.asarray(model(ids[:, :3]))[0],
                             atol=1e-5)


def test_encoder_block_dropout_only_in_training():
  block = TransformerEncoderBlock(**_BLOCK_ARGS, dropout=0.3, attention_dropout=0.3,
                                  relu_dropout=0.3)
  x = _randn(2, 5, 8)
  plain = np.asarray(block(x))
  np.testing.assert_array_equal(np.asarray(block(x, training=False)), plain)
  assert not np.allclose(np.asarray(block(x, training=True)), plain)


# --- decoder block ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_common_checks_with_memory(norm_first):
  run_layer_checks(TransformerDecoderBlock, dict(_BLOCK_ARGS, norm_first=norm_first),
                   (_randn(2, 4, 8), _randn(2, 6, 8)), (2, 4, 8))


def test_decoder_block_common_checks_decoder_only():
  block = run_layer_checks(TransformerDecoderBlock, _BLOCK_ARGS, _randn(2, 4, 8), (2, 4, 8))
  assert not any("cross_attention" in w.path for w in block.weights)


def test_decoder_block_is_causal_and_uses_memory():
  block = TransformerDecoderBlock(**_BLOCK_ARGS)
  x, memory = _randn(2, 5, 8), _randn(2, 3, 8)
  out = np.asarray(block(x, memory))
  changed = x.copy()
  changed[:, 3:] += 1.0
  np.testing.assert_allclose(np.asarray(block(changed, memory))[:, :3], out[:, :3], atol=1e-5)
  assert not np.allclose(np.asarray(block(x, memory + 1.0)), out, atol=1e-3)


def test_decoder_block_padding_does_not_change_real_positions():
  block = TransformerDecoderBlock(**_BLOCK_ARGS)
  x, memory = _randn(2, 5, 8), _randn(2, 4, 8)
  memory_mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
  out = np.asarray(block(x, memory, memory_mask=memory_mask))
  other_memory = memory.copy()
  other_memory[1, 2:] = -50.0
  np.testing.assert_allclose(np.asarray(block(x, other_memory, memory_mask=memory_mask)), out,
                             atol=1e-5)
  np.testing.assert_allclose(np.asarray(block(x[1:], memory[1:, :2])), out[1:], atol=1e-5)


@pytest.mark.parametrize("jit,norm_first", [(False, True), (True, True), (False, False)])
def test_decoder_block_cached_decoding_equals_full_pass(jit, norm_first):
  b, t, s, d = 2, 6, 4, 8
  block = TransformerDecoderBlock(**_BLOCK_ARGS, norm_first=norm_first)
  x, memory = _randn(b, t, d), _randn(b, s, d)
  memory_mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
  full = np.asarray(block(x, memory, memory_mask=memory_mask))
  memory_kv = block.compute_memory_kv(memory)

  def step(x_i, cache, index):
    return block(x_i, cache=cache, cache_index=index, memory_kv=memory_kv,
                 memory_mask=memory_mask)

  if jit:
    step = tf.function(step, jit_compile=True)
  cache = block.init_cache(b, t)
  outs = []
  for i in range(t):
    out, cache = step(x[:, i:i + 1], cache, tf.constant(i))
    outs.append(np.asarray(out))
  np.testing.assert_allclose(np.concatenate(outs, axis=1), full, atol=1e-5)


def test_decoder_only_cached_decoding_equals_full_pass():
  block = TransformerDecoderBlock(**_BLOCK_ARGS)
  x = _randn(1, 5, 8)
  full = np.asarray(block(x))
  cache = block.init_cache(1, 5)
  outs = []
  for i in range(5):
    out, cache = block(x[:, i:i + 1], cache=cache, cache_index=i)
    outs.append(np.asarray(out))
  np.testing.assert_allclose(np.concatenate(outs, axis=1), full, atol=1e-5)


def test_decoder_block_memory_kv_built_before_first_call_survives_saving(tmp_path):
  block = TransformerDecoderBlock(**_BLOCK_ARGS)
  x, memory = _randn(2, 3, 8), _randn(2, 4, 8)
  memory_kv = block.compute_memory_kv(memory)
  out = np.asarray(block(x, memory_kv=memory_kv))
  np.testing.assert_allclose(np.asarray(block(x, memory)), out, atol=1e-6)
  x_in, m_in = keras.Input((None, 8)), keras.Input((None, 8))
  model = keras.Model([x_in, m_in], block(x_in, m_in))
  model.save(tmp_path / "m.keras")
  restored = keras.models.load_model(tmp_path / "m.keras")
  np.testing.assert_allclose(np.asarray(restored([x, memory])), out, atol=1e-6)


def test_decoder_block_init_cache_needs_a_built_block():
  with pytest.raises(ValueError, match="build"):
    TransformerDecoderBlock(**_BLOCK_ARGS).init_cache(1, 4)


def test_decoder_block_attention_over_memory_built_after_first_call_survives_saving(tmp_path):
  block = TransformerDecoderBlock(**_BLOCK_ARGS)
  x, memory = _randn(2, 3, 8), _randn(2, 4, 6)
  x_in = keras.Input((None, 8))
  model = keras.Model(x_in, block(x_in))  # decoder-only at first
  memory_kv = block.compute_memory_kv(memory)  # now with a memory of size 6
  out = np.asarray(block(x, memory_kv=memory_kv))
  model.save(tmp_path / "m.keras")
  restored_block = keras.models.load_model(tmp_path / "m.keras").layers[-1]
  np.testing.assert_allclose(np.asarray(restored_block(x, memory)), out, atol=1e-6)


_REQUIRED_ARGS = {
    "Dense": {"units": 4},
    "Dropout": {"rate": 0.1},
    "TokenEmbedding": {"vocab_size": 5, "hidden_size": 4},
    "MultiHeadSelfAttention": {"num_heads": 2},
    "MultiHeadCrossAttention": {"num_heads": 2},
    "TransformerEncoderBlock": {"num_heads": 2, "filter_size": 8},
    "TransformerDecoderBlock": {"num_heads": 2, "filter_size": 8},
}


@pytest.mark.parametrize("name", sorted(_REQUIRED_ARGS))
def test_get_config_echoes_every_constructor_argument_and_its_default(name):
  """Each constructor argument is in get_config, plain values equal to the signature's
  default (objects such as initializers and activations serialized, as Keras does), and
  from_config rebuilds an equal layer."""
  import inspect  # pylint: disable=g-import-not-at-top
  from t2t_lite import layers  # pylint: disable=g-import-not-at-top
  cls = getattr(layers, name)
  layer = cls(**_REQUIRED_ARGS[name])
  config = layer.get_config()
  for parameter in inspect.signature(cls.__init__).parameters.values():
    if parameter.name == "self" or parameter.kind in (parameter.VAR_KEYWORD,
                                                      parameter.VAR_POSITIONAL):
      continue
    assert parameter.name in config, (name, parameter.name)
    if parameter.name in _REQUIRED_ARGS[name]:
      assert config[parameter.name] == _REQUIRED_ARGS[name][parameter.name]
    elif parameter.name.endswith(("initializer", "activation")):
      if parameter.default is not None:
        kind = (keras.activations if parameter.name.endswith("activation") else
                keras.initializers)
        expected = kind.serialize(kind.get(parameter.default))
        assert config[parameter.name] == expected, (name, parameter.name)
    else:
      assert config[parameter.name] == parameter.default, (name, parameter.name)
  clone = cls.from_config(config)
  assert type(clone) is cls
  assert clone.get_config() == config
