"""Tests of MultiHeadSelfAttention (with its cache) and MultiHeadCrossAttention over a memory."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.layers import MultiHeadCrossAttention
from t2t_lite.layers import MultiHeadSelfAttention
from t2t_lite.layers.testing import run_layer_checks


def _randn(*shape):
  return np.random.randn(*shape).astype("float32")


def _reference(query_in, memory_in, wq, bq, wk, bk, wv, bv, wo, bo, num_heads, allowed):
  """NumPy multi-head attention; `allowed` is a boolean [B, T, S] (True = may attend)."""
  b, t, _ = query_in.shape
  s = memory_in.shape[1]
  q = (query_in @ wq + bq).reshape(b, t, num_heads, -1)
  k = (memory_in @ wk + bk).reshape(b, s, num_heads, -1)
  v = (memory_in @ wv + bv).reshape(b, s, num_heads, -1)
  logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
  logits = np.where(allowed[:, None], logits, -np.inf)
  row_ok = allowed.any(-1)  # [B, T]
  logits = np.where(row_ok[:, None, :, None], logits, 0.0)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs = probs / probs.sum(-1, keepdims=True)
  context = np.einsum("bnts,bsnh->btnh", probs, v).reshape(b, t, -1)
  return (context @ wo + bo) * row_ok[..., None]


def _self_attention_reference(layer, x, allowed):
  d = layer._hidden_size
  nk = layer.num_heads * layer._key_dim
  w = np.asarray(layer._qkv_dense.kernel)
  bias = np.asarray(layer._qkv_dense.bias)
  wo, bo = np.asarray(layer._output_dense.kernel), np.asarray(layer._output_dense.bias)
  assert w.shape[0] == d
  return _reference(x, x, w[:, :nk], bias[:nk], w[:, nk:2 * nk], bias[nk:2 * nk],
                    w[:, 2 * nk:], bias[2 * nk:], wo, bo, layer.num_heads, allowed)


def _random_biases(layer):
  for weight in layer.weights:
    if weight.name == "bias":
      weight.assign(_randn(*weight.shape) * 0.5)


def test_common_checks_self_attention():
  x = _randn(2, 5, 16)
  run_layer_checks(MultiHeadSelfAttention, {"num_heads": 4}, x, (2, 5, 16),
                   call_kwargs={"use_causal_mask": True})


def test_common_checks_self_attention_other_sizes():
  x = _randn(2, 5, 12)
  layer = run_layer_checks(MultiHeadSelfAttention,
                           {"num_heads": 2, "key_dim": 5, "value_dim": 3, "output_dim": 7,
                            "use_bias": False}, x, (2, 5, 7), run_mixed_precision=False)
  # one fused Q/K/V kernel and an output kernel, nothing else
  assert [tuple(w.shape) for w in layer.weights] == [(12, 2 * (5 + 5 + 3)), (2 * 3, 7)]


def test_common_checks_attention_over_memory():
  run_layer_checks(MultiHeadCrossAttention, {"num_heads": 2}, (_randn(2, 3, 8), _randn(2, 6, 8)),
                   (2, 3, 8))


def test_fused_projection_and_param_count():
  layer = MultiHeadSelfAttention(4)
  layer.build((None, None, 16))
  assert len(layer.weights) == 4
  assert tuple(layer._qkv_dense.kernel.shape) == (16, 48)
  assert layer.count_params() == 16 * 48 + 48 + 16 * 16 + 16


@pytest.mark.parametrize("causal", [False, True])
def test_matches_numpy_reference_with_all_masks_combined(causal):
  b, t, d = 3, 6, 16
  layer = MultiHeadSelfAttention(4)
  x = _randn(b, t, d)
  layer.build(x.shape)
  _random_biases(layer)
  padding = np.array([[1] * 6, [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], bool)
  attention_mask = np.random.rand(b, t, t) > 0.3
  attention_mask[2, 1, :] = False  # a fully masked row
  out = np.asarray(layer(x, mask=padding, attention_mask=attention_mask,
                         use_causal_mask=causal))
  allowed = padding[:, :, None] & padding[:, None, :] & attention_mask
  if causal:
    allowed &= np.tril(np.ones((t, t), bool))
  np.testing.assert_allclose(out, _self_attention_reference(layer, x, allowed), atol=1e-5)
  np.testing.assert_array_equal(out[2, 1], 0.0)  # the fully masked row gives zeros
  np.testing.assert_array_equal(out[1, 4:], 0.0)  # padded queries give zeros


@pytest.mark.parametrize("value_dim", [None, 3])
def test_all_attention_paths_give_the_same_numbers(value_dim):
  layer = MultiHeadSelfAttention(2, value_dim=value_dim, dropout=0.3)
  x = _randn(2, 7, 8)
  attention_mask = np.random.rand(2, 7, 7) > 0.4
  attention_mask[0, 3] = False  # a fully masked row
  kwargs = {"attention_mask": attention_mask, "use_causal_mask": True}
  assert layer._own_kernels  # TensorFlow: heads-first batched matmuls
  heads_first = np.asarray(layer(x, **kwargs))
  heads_first_explicit, scores = layer(x, return_attention_scores=True, **kwargs)
  layer._own_kernels = False  # [B, T, N, H] through keras.ops.dot_product_attention
  fused = np.asarray(layer(x, **kwargs))
  explicit, scores_2 = layer(x, return_attention_scores=True, **kwargs)
  np.testing.assert_allclose(heads_first, fused, atol=1e-6)
  np.testing.assert_allclose(heads_first_explicit, fused, atol=1e-6)
  np.testing.assert_allclose(explicit, fused, atol=1e-6)
  np.testing.assert_allclose(scores, scores_2, atol=1e-6)
  assert np.abs(fused).sum() > 0
  assert scores.shape == (2, 2, 7, 7)
  scores = np.asarray(scores)
  allowed = attention_mask & np.tril(np.ones((7, 7), bool))
  assert np.all(scores[np.broadcast_to(~allowed[:, None], scores.shape)] == 0.0)
  row_sums = scores.sum(-1)
  np.testing.assert_allclose(row_sums, np.broadcast_to(allowed.any(-1)[:, None], row_sums.shape),
                             atol=1e-5)


@pytest.mark.parametrize("value_dim", [None, 5])
def test_one_query_path_matches_dot_product_attention(value_dim):
  # A decoding step (one query position) on TensorFlow reads the cache through block-diagonal
  # matmuls instead of ops.dot_product_attention; both must agree, masks and all.
  b, s, d = 3, 9, 12
  layer = MultiHeadCrossAttention(3, value_dim=value_dim)
  x, memory = _randn(b, 1, d), _randn(b, s, d)
  layer(x, memory)
  _random_biases(layer)
  memory_mask = np.random.rand(b, s) > 0.3
  memory_mask[0] = False  # nothing to attend to: zeros
  memory_mask[1] = True
  assert layer._own_kernels
  one_query = np.asarray(layer(x, memory, memory_mask=memory_mask))
  layer._own_kernels = False
  fused = np.asarray(layer(x, memory, memory_mask=memory_mask))
  np.testing.assert_allclose(one_query, fused, atol=1e-5)
  np.testing.assert_array_equal(one_query[0], 0.0)
  assert np.abs(one_query[1:]).sum() > 0


def test_dropout_only_in_training_and_seeded():
  x = _randn(2, 6, 8)
  layer = MultiHeadSelfAttention(2, dropout=0.5, seed=7)
  plain = np.asarray(layer(x))
  np.testing.assert_array_equal(np.asarray(layer(x, training=False)), plain)
  dropped = np.asarray(layer(x, training=True))
  assert not np.allclose(dropped, plain)
  twin = MultiHeadSelfAttention(2, dropout=0.5, seed=7)
  twin(x)
  twin.set_weights(layer.get_weights()[:4] + twin.get_weights()[4:])
  twin.seed_generator.state.assign(keras.random.SeedGenerator(7).state)
  layer.seed_generator.state.assign(keras.random.SeedGenerator(7).state)
  np.testing.assert_array_equal(np.asarray(twin(x, training=True)),
                                np.asarray(layer(x, training=True)))


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_fully_masked_rows_give_zeros_not_nan(policy):
  layer = MultiHeadSelfAttention(2, dtype=policy)
  x = tf.constant(_randn(2, 4, 8) * 100.0)  # large activations, too
  attention_mask = np.ones((2, 4, 4), bool)
  attention_mask[0, 2] = False
  attention_mask[1] = False
  with tf.GradientTape() as tape:
    tape.watch(x)
    out = layer(x, attention_mask=attention_mask)
    loss = tf.reduce_sum(tf.cast(out, "float32"))
  grads = tape.gradient(loss, [x] + layer.trainable_weights)
  out = np.asarray(tf.cast(out, "float32"))
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out[0, 2], 0.0)
  np.testing.assert_array_equal(out[1], 0.0)
  assert np.abs(out[0, 0]).sum() > 0
  for g in grads:
    assert np.all(np.isfinite(np.asarray(tf.cast(g, "float32"))))


def _decode_step_by_step(layer, x, cache, step):
  outs = []
  for i in range(x.shape[1]):
    out, cache = step(x[:, i:i + 1], cache, tf.constant(i))
    outs.append(np.asarray(out))
  return np.concatenate(outs, axis=1), cache


def _layer_and_causal_pass(b, t, d):
  """A 4-head layer (key_dim 3, value_dim 5) with random biases, x [b, t, d] and the layer's
  full causal pass over x."""
  layer = MultiHeadSelfAttention(4, key_dim=3, value_dim=5)
  x = _randn(b, t, d)
  layer.build(x.shape)
  _random_biases(layer)
  return layer, x, np.asarray(layer(x, use_causal_mask=True))


@pytest.mark.parametrize("jit", [False, True])
def test_cached_decoding_equals_full_causal_pass(jit):
  b, t, d = 2, 6, 16
  layer, x, full = _layer_and_causal_pass(b, t, d)
  traces = []

  def step(x_i, cache, index):
    traces.append(1)
    return layer(x_i, use_causal_mask=True, cache=cache, cache_index=index)

  if jit:
    step = tf.function(step, jit_compile=True)
  cache = layer.init_cache(b, t + 2)  # room to spare: unwritten positions must not count
  assert tuple(cache["key"].shape) == (b, 4, t + 2, 3)
  assert tuple(cache["value"].shape) == (b, 4, t + 2, 5)
  stepped, cache = _decode_step_by_step(layer, x, cache, step)
  np.testing.assert_allclose(stepped, full, atol=1e-5)
  if jit:
    assert len(traces) == 1  # one trace for all positions: static shapes
  # the cache holds the projected keys of every position, zeros after them
  assert np.all(np.asarray(cache["key"])[:, :, t:] == 0.0)
  assert np.all(np.abs(np.asarray(cache["key"])[:, :, :t]).sum(-1) > 0)


@pytest.mark.parametrize("graph", [False, True])
def test_growing_cache_prefill_and_steps_equal_the_full_causal_pass(graph):
  # init_cache(b, None) holds no position; calls without cache_index append theirs: first a
  # prefill of 3 positions (causal among themselves), then one position per call.
  b, t, d = 2, 6, 16
  layer, x, full = _layer_and_causal_pass(b, t, d)

  def step(x_i, cache):
    return layer(x_i, use_causal_mask=True, cache=cache)

  if graph:
    step = tf.function(step, reduce_retracing=True)
  cache = layer.init_cache(b, None)
  assert tuple(cache["key"].shape) == (b, 4, 0, 3)
  assert tuple(cache["value"].shape) == (b, 4, 0, 5)
  out, cache = step(x[:, :3], cache)
  outs = [np.asarray(out)]
  for i in range(3, t):
    assert tuple(cache["key"].shape) == (b, 4, i, 3)
    out, cache = step(x[:, i:i + 1], cache)
    outs.append(np.asarray(out))
  np.testing.assert_allclose(np.concatenate(outs, axis=1), full, atol=1e-5)
  assert tuple(cache["value"].shape) == (b, 4, t, 5)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_update_positions_writes_the_slice(mode):
  # TensorStridedSliceUpdate outside XLA, dynamic_update_slice under it: the same values.
  from t2t_lite.layers.attention import update_positions  # pylint: disable=g-import-not-at-top
  cache, new = _randn(2, 3, 9, 4), _randn(2, 3, 3, 4)
  fn = update_positions
  if mode != "eager":
    fn = tf.function(update_positions, jit_compile=mode == "xla")
  for start in (0, 4, 6):
    want = cache.copy()
    want[:, :, start:start + 3] = new
    got = np.asarray(fn(tf.constant(cache), tf.constant(start), tf.constant(new)))
    np.testing.assert_array_equal(got, want)


def test_cached_prefill_then_steps():
  layer = MultiHeadSelfAttention(2)
  x = _randn(2, 7, 8)
  full = np.asarray(layer(x, use_causal_mask=True))
  cache = layer.init_cache(2, 7)
  first, cache = layer(x[:, :4], use_causal_mask=True, cache=cache, cache_index=0)
  np.testing.assert_allclose(first, full[:, :4], atol=1e-5)
  rest, cache = layer(x[:, 4:], use_causal_mask=True, cache=cache, cache_index=4)
  np.testing.assert_allclose(rest, full[:, 4:], atol=1e-5)


@pytest.mark.parametrize("b,t,d,heads,key_dim,use_bias,mask_kind", [
    (2, 5, 8, 2, 4, False, None),
    (3, 7, 12, 3, 4, True, "causal"),
    (2, 6, 16, 4, 8, True, "attention_mask"),
    (1, 9, 10, 5, 2, True, "both"),
])
def test_load_keras_weights_matches_keras(b, t, d, heads, key_dim, use_bias, mask_kind):
  mha = keras.layers.MultiHeadAttention(heads, key_dim, use_bias=use_bias,
                                        bias_initializer="random_normal")
  x = _randn(b, t, d)
  attention_mask = np.random.rand(b, t, t) > 0.5
  attention_mask[:, np.arange(t), np.arange(t)] = True  # no fully masked row (Keras differs)
  kwargs = {}
  if mask_kind in ("attention_mask", "both"):
    kwargs["attention_mask"] = attention_mask
  if mask_kind in ("causal", "both"):
    kwargs["use_causal_mask"] = True
  expected = np.asarray(mha(x, x, **kwargs))
  layer = MultiHeadSelfAttention(heads, key_dim=key_dim, use_bias=use_bias)
  before = np.asarray(layer(x, **kwargs))
  assert not np.allclose(before, expected, atol=1e-3)
  layer.load_keras_weights(mha)
  np.testing.assert_allclose(np.asarray(layer(x, **kwargs)), expected, atol=1e-5)


def test_load_keras_weights_rejects_mismatched_sizes():
  mha = keras.layers.MultiHeadAttention(2, 4)
  mha(_randn(1, 3, 8), _randn(1, 3, 8))
  with pytest.raises(ValueError, match="differ"):
    MultiHeadSelfAttention(4).load_keras_weights(mha)
  with pytest.raises(ValueError, match="build"):
    MultiHeadSelfAttention(2).load_keras_weights(keras.layers.MultiHeadAttention(2, 4))


def test_keras_masking_padding_does_not_change_real_positions():
  inputs = keras.Input((None,), dtype="int32")
  h = keras.layers.Embedding(20, 8, mask_zero=True)(inputs)
  outputs = MultiHeadSelfAttention(2)(h)
  model = keras.Model(inputs, outputs)
  short = np.array([[3, 4, 5, 0, 0, 0]])
  longer = np.array([[3, 4, 5, 9, 9, 0]])
  out_short = np.asarray(model(short))
  np.testing.assert_array_equal(out_short[0, 3:], 0.0)
  # the same three real tokens without any padding at all
  np.testing.assert_allclose(np.asarray(model(short[:, :3]))[0], out_short[0, :3], atol=1e-6)
  assert not np.allclose(np.asarray(model(longer))[0, :3], out_short[0, :3])


def test_bad_inputs_raise_value_errors_naming_the_argument():
  layer = MultiHeadSelfAttention(2)
  with pytest.raises(ValueError, match=r"`x` must have rank 3.*\(2, 8\)"):
    layer(_randn(2, 8))
  with pytest.raises(ValueError, match=r"hidden size 10 is not divisible by num_heads=4"):
    MultiHeadSelfAttention(4)(_randn(2, 3, 10))
  x = _randn(2, 3, 8)
  with pytest.raises(ValueError, match=r"`mask` has shape \(2, 4\).*\(2, 3\)"):
    layer(x, mask=np.ones((2, 4), bool))
  with pytest.raises(ValueError, match=r"`attention_mask` has shape \(2, 3, 5\).*\(2, 3, 3\)"):
    layer(x, attention_mask=np.ones((2, 3, 5), bool))
  with pytest.raises(ValueError, match=r"`mask` must have rank 2"):
    layer(x, mask=np.ones((2, 3, 3), bool))
  with pytest.raises(ValueError, match="num_heads"):
    MultiHeadSelfAttention(0)
  memory_layer = MultiHeadCrossAttention(2)
  with pytest.raises(ValueError, match=r"`memory_mask` has shape \(2, 6\).*\(2, 5\)"):
    memory_layer(x, _randn(2, 5, 8), memory_mask=np.ones((2, 6), bool))


def test_attention_over_memory_matches_reference_and_reuses_memory_kv():
  b, t, s, d = 2, 3, 5, 8
  layer = MultiHeadCrossAttention(2)
  x, memory = _randn(b, t, d), _randn(b, s, d)
  layer(x, memory)
  _random_biases(layer)
  memory_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
  out = np.asarray(layer(x, memory, memory_mask=memory_mask))
  nk = 2 * layer._key_dim
  wkv, bkv = np.asarray(layer._kv_dense.kernel), np.asarray(layer._kv_dense.bias)
  expected = _reference(x, memory, np.asarray(layer._query_dense.kernel),
                        np.asarray(layer._query_dense.bias), wkv[:, :nk], bkv[:nk],
                        wkv[:, nk:], bkv[nk:], np.asarray(layer._output_dense.kernel),
                        np.asarray(layer._output_dense.bias), 2,
                        np.broadcast_to(memory_mask[:, None], (b, t, s)))
  np.testing.assert_allclose(out, expected, atol=1e-5)
  memory_kv = layer.compute_memory_kv(memory)
  assert tuple(memory_kv["key"].shape) == (b, 2, s, 4)
  np.testing.assert_allclose(layer(x, None, memory_mask=memory_mask, memory_kv=memory_kv), out,
                             atol=1e-6)
  # masked memory positions do not matter
  changed = memory.copy()
  changed[1, 2:] = 5.0
  np.testing.assert_allclose(layer(x, changed, memory_mask=memory_mask), out, atol=1e-5)


def test_several_query_rows_share_one_memory_row_of_memory_kv():
  # Beam search's layout: rows g*G .. g*G+G-1 of x attend to memory row g. The answers equal
  # those over the memory repeated G times, with x's padding mask, a per-memory-row bias over
  # several query positions, and the attention scores in x's rows.
  b, g, t, s, d = 2, 3, 2, 5, 8
  layer = MultiHeadCrossAttention(2)
  x, memory = _randn(b * g, t, d), _randn(b, s, d)
  layer(x, np.repeat(memory, g, axis=0))
  _random_biases(layer)
  memory_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
  mask = np.ones((b * g, t), bool)
  mask[4, 1] = False
  bias = _randn(b, 2, t, s)
  kv, kv_tiled = (layer.compute_memory_kv(m) for m in (memory, np.repeat(memory, g, axis=0)))
  for graph in (False, True):
    call = tf.function(layer) if graph else layer
    grouped, grouped_scores = call(x, None, memory_kv=kv, memory_mask=memory_mask, mask=mask,
                                   attention_bias=bias, return_attention_scores=True)
    tiled, tiled_scores = call(x, None, memory_kv=kv_tiled,
                               memory_mask=np.repeat(memory_mask, g, axis=0), mask=mask,
                               attention_bias=np.repeat(bias, g, axis=0),
                               return_attention_scores=True)
    assert tuple(grouped.shape) == (b * g, t, d)
    np.testing.assert_allclose(grouped, tiled, atol=1e-5)
    np.testing.assert_allclose(grouped_scores, tiled_scores, atol=1e-6)
  assert not np.any(np.asarray(grouped)[4, 1])  # the padded query row gives zeros
  # One query position a step (decoding), with a bias of one row for all.
  step, step_tiled = (layer(x[:, :1], None, memory_kv=m, attention_bias=bias[:1, :, :1])
                      for m in (kv, kv_tiled))
  np.testing.assert_allclose(step, step_tiled, atol=1e-5)


def test_cross_attention_former_name_is_an_alias():
  from t2t_lite import layers  # pylint: disable=g-import-not-at-top
  from t2t_lite.layers import memory_attention  # pylint: disable=g-import-not-at-top
  assert layers.MultiHeadAttention is MultiHeadCrossAttention
  assert memory_attention.MultiHeadAttention is MultiHeadCrossAttention
  assert keras.saving.get_registered_name(MultiHeadCrossAttention) == (
      "t2t_lite>MultiHeadCrossAttention")


def test_cross_attention_saved_under_its_former_name_still_loads(tmp_path):
  """A .keras file written when the class was registered as "t2t_lite>MultiHeadAttention"."""
  import json  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top
  x_in, memory_in = keras.Input((3, 8)), keras.Input((6, 8))
  model = keras.Model([x_in, memory_in],
                      MultiHeadCrossAttention(2, dropout=0.1, name="cross")(x_in, memory_in))
  new_path, old_path = str(tmp_path / "new.keras"), str(tmp_path / "old.keras")
  model.save(new_path)
  # Rewrite the file's config as the former name wrote it.
  with zipfile.ZipFile(new_path) as source, zipfile.ZipFile(old_path, "w") as target:
    for item in source.infolist():
      data = source.read(item.filename)
      if item.filename == "config.json":
        text = data.decode("utf-8")
        assert "t2t_lite>MultiHeadCrossAttention" in text
        text = text.replace("MultiHeadCrossAttention", "MultiHeadAttention")
        json.loads(text)
        data = text.encode("utf-8")
      target.writestr(item, data)
  loaded = keras.models.load_model(old_path)
  layer = loaded.get_layer("cross")
  assert isinstance(layer, MultiHeadCrossAttention)
  assert layer.get_config() == model.get_layer("cross").get_config()
  x, memory = _randn(2, 3, 8), _randn(2, 6, 8)
  np.testing.assert_allclose(np.asarray(loaded([x, memory])), np.asarray(model([x, memory])),
                             rtol=1e-6, atol=1e-6)
