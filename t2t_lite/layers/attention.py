"""Multi-head attention: self-attention with a key/value cache, and attention over a memory.

    from t2t_lite.layers.attention import MultiHeadSelfAttention, MultiHeadCrossAttention

The two layers share one implementation of the attention math, in three modules:

* this one: `MultiHeadSelfAttention`, with its fused Q/K/V projection, its masks and its
  key/value cache for incremental decoding;
* `t2t_lite.layers.memory_attention`: `MultiHeadCrossAttention` of x over a memory (also
  importable from here, as is its former name `MultiHeadAttention`);
* `t2t_lite.layers.attention_base`: the attention math both use (the layouts, float32
  softmax, fully masked rows), and `t2t_lite.layers.attention_masks`: boolean masks (True = may
  attend) and the checks of their shapes.

The key/value cache of `MultiHeadSelfAttention` is a dict, heads first:

    {"key":   [batch, num_heads, max_length, key_dim],
     "value": [batch, num_heads, max_length, value_dim]}

preallocated by `layer.init_cache(batch_size, max_length, dtype)`. A call with
`cache=..., cache_index=i` writes the new keys and values at positions [i, i + T)
(`update_positions`: static shapes, so it runs under tf.function, XLA and TPU), attends over
the written positions only, and returns `(output, new_cache)`.

A cache can also grow: `layer.init_cache(batch_size, None)` holds no position, and a call
with `cache_index=None` appends the new keys and values after the cached ones (a
concatenation: the shapes change at every step, so not under XLA). Reordering such a cache
(beam search) and attending over it then cost what the positions written so far cost, not
what a buffer for the longest decode does; tensor2tensor's graph-mode decoding did the same.
Heads first, a decoding step is two batched matmuls over (batch, heads) that read the cache
in place; a [batch, max_length, heads, dim] cache has to be transposed (copied whole) at
every step, which made cached self-attention ~3x slower per step on CPU.
"""
import keras
from keras import ops
import numpy as np

from t2t_lite.layers.attention_base import MultiHeadAttentionBase
from t2t_lite.layers.attention_base import dense_2d
from t2t_lite.layers.attention_masks import ShapeOnly
from t2t_lite.layers.attention_masks import and_masks
from t2t_lite.layers.attention_masks import causal_mask
from t2t_lite.layers.attention_masks import check_mask_shape
from t2t_lite.layers.attention_masks import padding_masks
from t2t_lite.layers.attention_masks import static_shape
from t2t_lite.layers.attention_masks import written_positions_mask
from t2t_lite.layers.xla_context import in_xla_context
from t2t_lite.layers.memory_attention import MultiHeadAttention
from t2t_lite.layers.memory_attention import MultiHeadCrossAttention

__all__ = ["MultiHeadAttention", "MultiHeadCrossAttention", "MultiHeadSelfAttention"]


def update_positions(cache, start, new):
  """`cache` [B, N, L, dim] with positions [start, start + T) replaced by `new` [B, N, T, dim].

  `keras.ops.slice_update` (XLA's dynamic_update_slice: in place in a compiled loop) under XLA
  and on the other backends. On TensorFlow outside XLA that op is compiled by XLA on its first
  call for every new cache shape (a server meets one per batch size and input length), so
  TensorFlow's own kernel, TensorStridedSliceUpdate, writes there instead (the same values:
  tests/test_layers_attention.py).
  """
  zero = ops.zeros((), "int32")
  if keras.config.backend() != "tensorflow":
    return ops.slice_update(cache, (zero, zero, start, zero), new)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if in_xla_context():
    return ops.slice_update(cache, (zero, zero, start, zero), new)
  shape, length = tf.shape(cache), tf.shape(new)[2]
  # Axes 0, 1 and 3 whole (begin_mask = end_mask = 0b1011), axis 2 from start to start + T.
  return tf.raw_ops.TensorStridedSliceUpdate(
      input=cache, begin=tf.stack([0, 0, start, 0]),
      end=tf.stack([shape[0], shape[1], start + length, shape[3]]),
      strides=tf.ones([4], tf.int32), value=new, begin_mask=0b1011, end_mask=0b1011)


@keras.saving.register_keras_serializable(package="t2t_lite")
class MultiHeadSelfAttention(MultiHeadAttentionBase):
  """Multi-head self-attention with one fused Q/K/V projection and a key/value cache.

  Queries, keys and values come from the same input through a single [hidden, N*(2*key_dim +
  value_dim)] matmul; the heads' outputs are concatenated and projected to `output_dim`.

  Args: `MultiHeadAttentionBase`'s (num_heads, key_dim, value_dim, dropout, use_bias,
    output_dim, kernel_initializer, bias_initializer, seed, length_scale, **kwargs).

  Call arguments:
    x: [batch, length, hidden].
    mask: optional [batch, length] padding mask (True/1 = a real token), also taken from Keras
      masking. Without a cache it masks both queries and keys; with a cache only the current
      queries (mask earlier cached positions with `attention_mask`).
    attention_mask: optional boolean [batch, length, key_length] mask, or broadcastable
      ([length, key_length], [1, length, key_length], ...); key_length is `length`, or
      `max_length` with a cache. True = may attend.
    use_causal_mask: whether query i may only attend to keys <= i (absolute positions when a
      cache is used).
    training: whether dropout is active.
    cache: optional dict {"key": [B, N, max_length, key_dim], "value": [B, N, max_length,
      value_dim]} from `init_cache` (or a previous call). The call then returns (output, cache).
    cache_index: int or scalar int tensor, the position of x's first step in the cache. Keys
      at positions >= cache_index + length are never attended to. None (the default): x's
      keys and values are appended after the cached ones (a growing cache from
      `init_cache(batch_size, None)`; the returned cache is `length` positions longer).
    return_attention_scores: also return the attention probabilities [B, N, T, key_length].
    attention_bias: optional float32 [batch or 1, num_heads, length, key_length] added to the
      attention logits (e.g. `layers.RelativePositionBias`).

  Returns:
    output [batch, length, output_dim]; (output, scores), (output, cache) or
    (output, scores, cache) as asked.

  Example:

  >>> layer = MultiHeadSelfAttention(num_heads=4)
  >>> x = keras.random.normal((2, 10, 32))
  >>> y = layer(x, use_causal_mask=True)                  # [2, 10, 32]
  >>> cache = layer.init_cache(batch_size=2, max_length=10)
  >>> for i in range(10):                                # incremental decoding
  ...   y_i, cache = layer(x[:, i:i + 1], use_causal_mask=True, cache=cache, cache_index=i)
  """

  def build(self, input_shape):
    self._check_input("x", ShapeOnly(input_shape))
    hidden_size = input_shape[-1]
    self._resolve_dims(hidden_size)
    self._hidden_size = hidden_size
    self._qkv_dense = self._dense(self.num_heads * (2 * self._key_dim + self._value_dim), "qkv")
    self._qkv_dense.build(tuple(input_shape))
    self._output_dense = self._dense(self._output_dim, "output")
    self._output_dense.build(tuple(input_shape[:-1]) + (self.num_heads * self._value_dim,))
    self.built = True

  def _split_qkv(self, qkv, heads_first):
    """The fused projection [B, T, N*(2K+V)] -> query, key, value, each [B, T, N, dim] or, with
    heads_first, [B, N, T, dim]."""
    shape = ops.shape(qkv)
    n, k, v = self.num_heads, self._key_dim, self._value_dim
    if heads_first and k == v:
      # One transpose to [3, B, N, T, dim], then a split along the first axis, which
      # TensorFlow does without copying (each part is a contiguous slice of the buffer); a
      # split along any other axis copies all of Q, K and V once more.
      qkv = ops.transpose(ops.reshape(qkv, (shape[0], shape[1], 3, n, k)), (2, 0, 3, 1, 4))
      return [ops.squeeze(t, 0) for t in ops.split(qkv, 3, axis=0)]
    query, key, value = ops.split(qkv, [n * k, 2 * n * k], axis=-1)
    query, key, value = (self._split_heads(query, k), self._split_heads(key, k),
                         self._split_heads(value, v))
    if heads_first:
      query, key, value = (ops.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
    return query, key, value

  def init_cache(self, batch_size, max_length, dtype=None):
    """An empty (all zeros) key/value cache for `max_length` positions.

    Args:
      batch_size: int or scalar tensor.
      max_length: int, the number of positions the cache holds; None: a cache of 0 positions
        that grows by the positions of each call made with `cache_index=None`.
      dtype: the cache dtype; default the layer's compute dtype.

    Returns:
      {"key": [batch_size, num_heads, max_length, key_dim],
       "value": [batch_size, num_heads, max_length, value_dim]}
    """
    if self._key_dim is None:
      raise ValueError("%s: build the layer (call it once, or layer.build(shape)) before "
                       "init_cache, so that key_dim is known." % type(self).__name__)
    dtype = dtype or self.compute_dtype
    length = 0 if max_length is None else max_length
    return {
        "key": ops.zeros((batch_size, self.num_heads, length, self._key_dim), dtype),
        "value": ops.zeros((batch_size, self.num_heads, length, self._value_dim), dtype),
    }

  def _write_cache(self, cache, cache_index, key, value, batch):
    """Writes key and value [B, N, T, dim] into `cache` at `cache_index`, or after its
    positions when cache_index is None.

    Returns:
      (the new cache, the first written position as an int32 scalar).
    """
    name = type(self).__name__
    if not isinstance(cache, dict) or set(cache) != {"key", "value"}:
      raise ValueError("%s: `cache` must be the dict {'key', 'value'} from init_cache; "
                       "received %r." % (name, type(cache)))
    max_length = static_shape(cache["key"])[2]
    check_mask_shape("cache['key']", cache["key"],
                     (batch, self.num_heads, max_length, self._key_dim), name)
    check_mask_shape("cache['value']", cache["value"],
                     (batch, self.num_heads, max_length, self._value_dim), name)
    if cache_index is None:
      start = ops.cast(ops.shape(cache["key"])[2], "int32")
      new_cache = {part: ops.concatenate([cache[part], ops.cast(new, cache[part].dtype)], 2)
                   for part, new in (("key", key), ("value", value))}
      return new_cache, start
    start = ops.cast(cache_index, "int32")
    new_cache = {part: update_positions(cache[part], start, ops.cast(new, cache[part].dtype))
                 for part, new in (("key", key), ("value", value))}
    return new_cache, start

  def call(self, x, mask=None, attention_mask=None, use_causal_mask=False, training=None,
           cache=None, cache_index=None, return_attention_scores=False, attention_bias=None):
    name = type(self).__name__
    self._check_input("x", x, self._hidden_size)
    batch, length = static_shape(x)[:2]
    # The heads go first ([B, N, T, dim]) with a cache (its layout), and on TensorFlow without
    # one: one transpose of the fused Q/K/V instead of the several that [B, T, N, dim] costs
    # (see benchmarks/attention.py).
    heads_first = cache is not None or self._own_kernels
    query, key, value = self._split_qkv(dense_2d(self._qkv_dense, x), heads_first)

    seq_len = ops.shape(x)[1]
    if cache is None:
      key_len, combined = length, None
      if use_causal_mask:
        positions = ops.arange(seq_len, dtype="int32")
        combined = causal_mask(positions, positions)
      key_mask = mask
    else:
      cache, start = self._write_cache(cache, cache_index, key, value, batch)
      key, value = cache["key"], cache["value"]
      key_len = static_shape(key)[2]
      key_positions = ops.arange(ops.shape(key)[2], dtype="int32")
      # Only the written positions, [0, start + length): all of a growing cache's.
      combined = None
      if cache_index is not None:
        combined = written_positions_mask(key_positions, start + seq_len)
      # One appended step may attend to every position (a causal mask of its last row).
      if use_causal_mask and not (cache_index is None and length == 1):
        query_positions = start + ops.arange(seq_len, dtype="int32")
        combined = and_masks(combined, causal_mask(query_positions, key_positions))
      key_mask = None  # with a cache, `mask` masks the current queries only
    if mask is not None:
      check_mask_shape("mask", mask, (batch, length), name)
      combined = and_masks(combined, padding_masks(mask, key_mask))
    if attention_mask is not None:
      attention_mask = ops.cast(attention_mask, "bool")
      if len(static_shape(attention_mask)) == 2:
        check_mask_shape("attention_mask", attention_mask, (length, key_len), name)
        attention_mask = ops.expand_dims(attention_mask, 0)
      check_mask_shape("attention_mask", attention_mask, (batch, length, key_len), name)
      combined = and_masks(combined, attention_mask)

    output, scores = self._attention_output(query, key, value, combined, training,
                                            return_attention_scores, heads_first,
                                            attention_bias)
    result = (output,)
    if return_attention_scores:
      result += (scores,)
    if cache is not None:
      result += (cache,)
    return result[0] if len(result) == 1 else result

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.output_dim or input_shape[-1],)

  def load_keras_weights(self, mha):
    """Copies the weights of a built `keras.layers.MultiHeadAttention` used as self-attention.

    Afterwards `self(x, attention_mask=m, use_causal_mask=c)` equals
    `mha(x, x, attention_mask=m, use_causal_mask=c)` (up to float rounding) on every query row
    that has at least one key to attend to (Keras spreads a fully masked row uniformly, this
    layer returns zeros there). Builds this layer if needed.

    Args:
      mha: a built `keras.layers.MultiHeadAttention` whose query, key and value inputs had the
        same size, with the same num_heads, key_dim, value_dim, use_bias and output size.

    Raises:
      ValueError: if `mha` is unbuilt or its sizes differ from this layer's.
    """
    name = type(self).__name__
    if not isinstance(mha, keras.layers.MultiHeadAttention):
      raise ValueError("%s.load_keras_weights: expected a keras.layers.MultiHeadAttention; "
                       "received %r." % (name, type(mha)))
    if not mha.built:
      raise ValueError("%s.load_keras_weights: build the MultiHeadAttention first (call it "
                       "once on (x, x))." % name)
    q_kernel = ops.convert_to_numpy(mha.query_dense.kernel)   # [D, N, dk]
    k_kernel = ops.convert_to_numpy(mha.key_dense.kernel)
    v_kernel = ops.convert_to_numpy(mha.value_dense.kernel)   # [D, N, dv]
    o_kernel = ops.convert_to_numpy(mha.output_dense.kernel)  # [N, dv, out]
    hidden = q_kernel.shape[0]
    if k_kernel.shape[0] != hidden or v_kernel.shape[0] != hidden:
      raise ValueError("%s.load_keras_weights: query, key and value sizes differ (%d, %d, %d); "
                       "only self-attention weights can be loaded." %
                       (name, hidden, k_kernel.shape[0], v_kernel.shape[0]))
    if not self.built:
      self.build((None, None, hidden))
    mine = (self._hidden_size, self.num_heads, self._key_dim, self._value_dim,
            self._output_dim, self.use_bias)
    theirs = (hidden, q_kernel.shape[1], q_kernel.shape[2], v_kernel.shape[2],
              o_kernel.shape[-1], mha.use_bias)
    if mine != theirs:
      raise ValueError("%s.load_keras_weights: (hidden, num_heads, key_dim, value_dim, "
                       "output_dim, use_bias) differ: this layer has %s, the Keras layer %s." %
                       (name, mine, theirs))
    qkv_kernel = np.concatenate(
        [q_kernel.reshape(hidden, -1), k_kernel.reshape(hidden, -1),
         v_kernel.reshape(hidden, -1)], axis=-1)
    self._qkv_dense.kernel.assign(qkv_kernel)
    self._output_dense.kernel.assign(o_kernel.reshape(-1, o_kernel.shape[-1]))
    if self.use_bias:
      self._qkv_dense.bias.assign(np.concatenate(
          [ops.convert_to_numpy(mha.query_dense.bias).reshape(-1),
           ops.convert_to_numpy(mha.key_dense.bias).reshape(-1),
           ops.convert_to_numpy(mha.value_dense.bias).reshape(-1)]))
      self._output_dense.bias.assign(ops.convert_to_numpy(mha.output_dense.bias))
