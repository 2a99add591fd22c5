"""Multi-head attention: self-attention with a key/value cache, and attention over a memory.

Both layers share one implementation of the attention math (`_MultiHeadAttentionBase`): masks
are combined into one boolean [B or 1, T, S] tensor (True = may attend), and `_attend` computes
softmax(Q K^T / sqrt(key_dim)) V in one of two layouts:

* [B, T, N, dim] (attention over a memory, cached decoding, non-TensorFlow backends): through
  `keras.ops.dot_product_attention` when neither dropout nor the scores are needed, and through
  the same steps written out otherwise;
* [B, N, T, dim] (self-attention without a cache on TensorFlow): the fused Q/K/V projection is
  transposed once and the heads are batched matmuls, which measures ~15% faster on CPU than
  ops.dot_product_attention's einsums (benchmarks/attention.py);
* one query position over [B, S, N, dim] keys and values (a decoding step on TensorFlow, cached
  self-attention or attention over a memory): `_attend_one_query` reads the cache as
  [B, S, N*dim] matrices through block-diagonal matmuls, where the einsums would transpose
  the whole cache at every step.

All paths give the same numbers (tests/test_layers_attention.py). Logits are masked and
soft-maxed in float32 whatever the dtype policy, so the mask value never overflows under
float16 or bfloat16. A query row whose keys are all masked gives zeros, never NaN.

The key/value cache of `MultiHeadSelfAttention` is a dict

    {"key":   [batch, max_length, num_heads, key_dim],
     "value": [batch, max_length, num_heads, value_dim]}

preallocated by `layer.init_cache(batch_size, max_length, dtype)`. A call with
`cache=..., cache_index=i` writes the new keys and values at positions [i, i + T) with
`keras.ops.slice_update` (dynamic_update_slice: static shapes, so it runs under tf.function,
XLA and TPU), attends over the written positions only, and returns `(output, new_cache)`.
"""
import math

import keras
from keras import ops
import numpy as np

from t2t_lite.layers.dense import Dense
from t2t_lite.layers import dropout as dropout_lib
from t2t_lite.layers.dense import FanInUniform

# Added to masked logits (always float32, see `_attend`): exp() of it is exactly 0 and it stays
# finite whatever the compute dtype.
_MASK_VALUE = -1e9


def _static_shape(x):
  return tuple(getattr(x, "shape", ()))


def _check_mask_shape(name, mask, expected, layer_name):
  """Raises ValueError unless `mask`'s static dims agree with `expected` (or are 1)."""
  shape = _static_shape(mask)
  if len(shape) != len(expected):
    raise ValueError(
        "%s: `%s` must have rank %d, shape %s (or broadcastable); received %s with shape %s." %
        (layer_name, name, len(expected), _fmt(expected), name, _fmt(shape)))
  for got, want in zip(shape, expected):
    if got is not None and want is not None and got != want and got != 1:
      raise ValueError(
          "%s: `%s` has shape %s, which does not match the expected shape %s." %
          (layer_name, name, _fmt(shape), _fmt(expected)))


def _fmt(shape):
  return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _dense_2d(dense, x):
  """dense(x) for x of shape [B, T, H], as one 2-D matmul.

  keras.ops.matmul of a rank-3 input is a tf.tensordot on TensorFlow, whose extra shape ops
  and reshapes per call (and their gradients) cost a few percent at small sizes
  (benchmarks/attention.py); the result is the same.
  """
  shape = ops.shape(x)
  y = dense(ops.reshape(x, (-1, shape[-1])))
  return ops.reshape(y, (shape[0], shape[1], dense.units))


def _and(a, b):
  if a is None:
    return b
  if b is None:
    return a
  return ops.logical_and(a, b)


class _MultiHeadAttentionBase(keras.layers.Layer):
  """The attention math shared by `MultiHeadSelfAttention` and `MultiHeadAttention`.

  Subclasses project queries, keys and values to [B, T, num_heads, dim], combine their masks
  into one boolean [B or 1, T, S] tensor and call `_attend` and `_project_output`.
  """

  def __init__(self, num_heads, key_dim=None, value_dim=None, dropout=0.0, use_bias=True,
               output_dim=None, kernel_initializer=None, bias_initializer="zeros", seed=None,
               **kwargs):
    super().__init__(**kwargs)
    if not isinstance(num_heads, int) or num_heads <= 0:
      raise ValueError("%s: `num_heads` must be a positive int; received num_heads=%r." %
                       (type(self).__name__, num_heads))
    for arg, value in (("key_dim", key_dim), ("value_dim", value_dim),
                       ("output_dim", output_dim)):
      if value is not None and (not isinstance(value, int) or value <= 0):
        raise ValueError("%s: `%s` must be a positive int or None; received %s=%r." %
                         (type(self).__name__, arg, arg, value))
    if not 0.0 <= dropout < 1.0:
      raise ValueError("%s: `dropout` must be in [0, 1); received dropout=%r." %
                       (type(self).__name__, dropout))
    self.num_heads = num_heads
    self.key_dim = key_dim
    self.value_dim = value_dim
    self.dropout = float(dropout)
    self.use_bias = use_bias
    self.output_dim = output_dim
    self.kernel_initializer = keras.initializers.get(
        kernel_initializer if kernel_initializer is not None else FanInUniform())
    self.bias_initializer = keras.initializers.get(bias_initializer)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None
    self.supports_masking = True
    # keras.ops.dot_product_attention takes [B, T, N, dim]; on the TensorFlow backend it is an
    # einsum composition whose transposes cost more than the attention (1.0x Keras's time vs
    # 0.8x for heads first, benchmarks/attention.py), so there self-attention without a cache
    # keeps the heads first, and a decoding step (one query) reads the cache through
    # `_attend_one_query`. Other backends map it to fused kernels (cuDNN, SDPA): use it.
    self._own_kernels = keras.config.backend() == "tensorflow"
    self._key_dim = None  # resolved in build
    self._value_dim = None
    self._output_dim = None

  # --- helpers for subclasses --------------------------------------------------------------

  def _resolve_dims(self, hidden_size):
    name = type(self).__name__
    if hidden_size is None:
      raise ValueError("%s: the last dimension of the input must be known; received None." % name)
    if self.key_dim is None and hidden_size % self.num_heads:
      raise ValueError(
          "%s: the hidden size %d is not divisible by num_heads=%d; pass key_dim= explicitly." %
          (name, hidden_size, self.num_heads))
    self._key_dim = self.key_dim or hidden_size // self.num_heads
    self._value_dim = self.value_dim or self._key_dim
    self._output_dim = self.output_dim or hidden_size

  def _dense(self, units, name):
    # A fresh copy of the initializer per sublayer, so unseeded ones draw different values.
    init = keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))
    return Dense(units, use_bias=self.use_bias, kernel_initializer=init,
                 bias_initializer=keras.initializers.get(
                     keras.initializers.serialize(self.bias_initializer)),
                 dtype=self.dtype_policy, name=name)

  def _check_input(self, name, x, hidden_size=None):
    shape = _static_shape(x)
    if len(shape) != 3:
      raise ValueError("%s: `%s` must have rank 3, shape (batch, length, hidden); received "
                       "shape %s." % (type(self).__name__, name, _fmt(shape)))
    if hidden_size is not None and shape[-1] is not None and shape[-1] != hidden_size:
      raise ValueError("%s: `%s` has hidden size %d but the layer was built for %d (shape %s)." %
                       (type(self).__name__, name, shape[-1], hidden_size, _fmt(shape)))

  def _split_heads(self, x, dim):
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1], self.num_heads, dim))

  def _attend(self, query, key, value, mask, training, return_scores, heads_first=False):
    """softmax(Q K^T / sqrt(key_dim)) V over every head.

    Args:
      query: [B, T, N, key_dim]; key: [B, S, N, key_dim]; value: [B, S, N, value_dim]; or,
        with `heads_first`, [B, N, T, key_dim], [B, N, S, key_dim], [B, N, S, value_dim].
      mask: None or a boolean tensor broadcastable to [B, T, S]; True where a query may attend.
      training: whether dropout on the attention probabilities is active.
      return_scores: whether to return the probabilities too.
      heads_first: the layout of query, key, value and of the returned context.

    Returns:
      (context [B, T, N, value_dim] (or [B, N, T, value_dim] with heads_first), probabilities
      [B, N, T, S] or None). Probabilities of a query row whose keys are all masked are zero.
    """
    scale = 1.0 / math.sqrt(self._key_dim)
    head_mask = None if mask is None else ops.expand_dims(mask, 1)  # [B|1, 1, T, S]
    use_dropout = self.dropout > 0 and bool(training)
    if (not heads_first and not use_dropout and not return_scores and self._own_kernels
        and _static_shape(query)[1] == 1):
      return self._attend_one_query(query, key, value, head_mask, scale), None
    if not heads_first and not use_dropout and not return_scores:
      context = ops.dot_product_attention(query, key, value, mask=head_mask, scale=scale)
      return context, None
    # The steps of keras.ops.dot_product_attention, written out so that dropout and the scores
    # are available; with heads_first no transposes are needed (batched matmuls over B, N).
    if heads_first:
      # Scaling the queries costs T*key_dim multiplies per head instead of T*S.
      logits = ops.cast(ops.einsum("bnth,bnsh->bnts", query * ops.cast(scale, query.dtype),
                                   key), "float32")
    else:
      logits = ops.einsum("btnh,bsnh->bnts", query, key)
      logits = ops.multiply(ops.cast(logits, "float32"), scale)
    if head_mask is not None:
      logits = ops.where(head_mask, logits, _MASK_VALUE)
    probs = ops.cast(ops.softmax(logits, axis=-1), key.dtype)
    if return_scores and mask is not None:
      probs = probs * ops.cast(ops.expand_dims(ops.any(head_mask, axis=-1), -1), probs.dtype)
    attend_probs = probs
    if use_dropout:
      attend_probs = dropout_lib.dropout(probs, self.dropout, self.seed_generator)
    if heads_first:
      context = ops.einsum("bnts,bnsh->bnth", attend_probs, value)
    else:
      context = ops.einsum("bnts,bsnh->btnh", attend_probs, value)
    return context, (probs if return_scores else None)

  def _attend_one_query(self, query, key, value, head_mask, scale):
    """`_attend` for one query position (a decoding step) over [B, S, N, dim] keys and values.

    Written for the TensorFlow backend, where the einsums of ops.dot_product_attention
    transpose the whole key/value cache to heads-first at every step: two full copies of the
    cache per layer and step (most of a cached decoding step's time, benchmarks/attention.py).
    Here the cache is only read, as [B, S, N*dim] matrices: the query becomes a block-diagonal
    [B, N*key_dim, N] matrix, so logits = keys @ Q_bd is one batched matmul giving [B, S, N];
    the context is probs [B, N, S] @ values [B, S, N*value_dim], of which each head keeps its
    own diagonal block. That does N times the multiply-adds of the attention proper, which is
    tiny next to the copies it saves (a step's attention is O(S * N * dim)).

    Args:
      query: [B, 1, N, key_dim]; key: [B, S, N, key_dim]; value: [B, S, N, value_dim].
      head_mask: None or a boolean [B|1, 1, 1, S].
      scale: the logit scale.

    Returns:
      context [B, 1, N, value_dim].
    """
    n, k, v = self.num_heads, self._key_dim, self._value_dim
    batch, keys = ops.shape(key)[0], ops.shape(key)[1]
    eye = ops.eye(n, dtype=query.dtype)
    q = query[:, 0] * ops.cast(scale, query.dtype)  # [B, N, key_dim]
    q_block = ops.reshape(ops.expand_dims(q, -1) * eye[None, :, None, :], (batch, n * k, n))
    logits = ops.matmul(ops.reshape(key, (batch, keys, n * k)), q_block)  # [B, S, N]
    logits = ops.transpose(ops.cast(logits, "float32"), (0, 2, 1))  # [B, N, S]
    if head_mask is not None:
      logits = ops.where(head_mask[:, :, 0], logits, _MASK_VALUE)  # [B|1, 1, S]
    probs = ops.cast(ops.softmax(logits, axis=-1), value.dtype)
    blocks = ops.matmul(probs, ops.reshape(value, (batch, keys, n * v)))  # [B, N, N*value_dim]
    blocks = ops.reshape(blocks, (batch, n, n, v))
    context = ops.sum(blocks * ops.cast(eye, value.dtype)[None, :, :, None], axis=2)
    return ops.expand_dims(context, 1)

  def _project_output(self, context, mask):
    """[B, T, N, value_dim] -> [B, T, output_dim]; rows with no key to attend to are zeros."""
    shape = ops.shape(context)
    output = self._output_dense(ops.reshape(context, (-1, self.num_heads * self._value_dim)))
    output = ops.reshape(output, (shape[0], shape[1], self._output_dim))
    if mask is not None:
      row_valid = ops.any(mask, axis=-1, keepdims=True)  # [B|1, T, 1]
      output = output * ops.cast(row_valid, output.dtype)
    return output

  @staticmethod
  def _padding_masks(query_mask, key_mask):
    """[B, T] and [B, S] padding masks -> a boolean [B, T, S] (or None)."""
    combined = None
    if query_mask is not None:
      combined = ops.expand_dims(ops.cast(query_mask, "bool"), -1)
    if key_mask is not None:
      combined = _and(combined, ops.expand_dims(ops.cast(key_mask, "bool"), 1))
    return combined

  def compute_mask(self, inputs, mask=None, *args, **kwargs):
    return mask

  def get_config(self):
    config = super().get_config()
    config.update({
        "num_heads": self.num_heads,
        "key_dim": self.key_dim,
        "value_dim": self.value_dim,
        "dropout": self.dropout,
        "use_bias": self.use_bias,
        "output_dim": self.output_dim,
        "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        "seed": self.seed,
    })
    return config


@keras.saving.register_keras_serializable(package="t2t_lite")
class MultiHeadSelfAttention(_MultiHeadAttentionBase):
  """Multi-head self-attention with one fused Q/K/V projection and a key/value cache.

  Queries, keys and values come from the same input through a single [hidden, N*(2*key_dim +
  value_dim)] matmul; the heads' outputs are concatenated and projected to `output_dim`.

  Args:
    num_heads: number of attention heads.
    key_dim: size of each query/key head; default hidden_size // num_heads (the hidden size
      must then be divisible by num_heads).
    value_dim: size of each value head; default key_dim.
    dropout: dropout rate on the attention probabilities (training only, seeded).
    use_bias: whether the projections have biases.
    output_dim: size of the output's last axis; default the input's hidden size.
    kernel_initializer: initializer of the projection kernels; default `FanInUniform()`.
    bias_initializer: initializer of the biases; default "zeros".
    seed: int seed of the attention dropout.
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

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
    cache: optional dict {"key": [B, max_length, N, key_dim], "value": [B, max_length, N,
      value_dim]} from `init_cache` (or a previous call). The call then returns (output, cache).
    cache_index: int or scalar int tensor, the position of x's first step in the cache
      (default 0). Keys at positions >= cache_index + length are never attended to.
    return_attention_scores: also return the attention probabilities [B, N, T, key_length].

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
    self._check_input("x", _ShapeOnly(input_shape))
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
      max_length: int, the number of positions the cache holds.
      dtype: the cache dtype; default the layer's compute dtype.

    Returns:
      {"key": [batch_size, max_length, num_heads, key_dim],
       "value": [batch_size, max_length, num_heads, value_dim]}
    """
    if self._key_dim is None:
      raise ValueError("%s: build the layer (call it once, or layer.build(shape)) before "
                       "init_cache, so that key_dim is known." % type(self).__name__)
    dtype = dtype or self.compute_dtype
    return {
        "key": ops.zeros((batch_size, max_length, self.num_heads, self._key_dim), dtype),
        "value": ops.zeros((batch_size, max_length, self.num_heads, self._value_dim), dtype),
    }

  def call(self, x, mask=None, attention_mask=None, use_causal_mask=False, training=None,
           cache=None, cache_index=None, return_attention_scores=False):
    name = type(self).__name__
    self._check_input("x", x, self._hidden_size)
    length = _static_shape(x)[1]
    batch = _static_shape(x)[0]
    qkv = _dense_2d(self._qkv_dense, x)
    # Without a cache the heads go first ([B, N, T, dim]): one transpose of the fused Q/K/V
    # instead of the several that [B, T, N, dim] costs (see benchmarks/attention.py).
    heads_first = cache is None and self._own_kernels
    query, key, value = self._split_qkv(qkv, heads_first)

    seq_len = ops.shape(x)[1]
    if cache is not None:
      if not isinstance(cache, dict) or set(cache) != {"key", "value"}:
        raise ValueError("%s: `cache` must be the dict {'key', 'value'} from init_cache; "
                         "received %r." % (name, type(cache)))
      max_length = _static_shape(cache["key"])[1]
      _check_mask_shape("cache['key']", cache["key"],
                        (batch, max_length, self.num_heads, self._key_dim), name)
      _check_mask_shape("cache['value']", cache["value"],
                        (batch, max_length, self.num_heads, self._value_dim), name)
      start = ops.cast(0 if cache_index is None else cache_index, "int32")
      zero = ops.zeros((), "int32")
      key = ops.slice_update(cache["key"], (zero, start, zero, zero),
                             ops.cast(key, cache["key"].dtype))
      value = ops.slice_update(cache["value"], (zero, start, zero, zero),
                               ops.cast(value, cache["value"].dtype))
      cache = {"key": key, "value": value}
      key_len = max_length
      key_pos = ops.arange(ops.shape(key)[1], dtype="int32")
      query_pos = start + ops.arange(seq_len, dtype="int32")
      # Only the written positions, [0, start + length).
      combined = ops.expand_dims(ops.expand_dims(key_pos < start + seq_len, 0), 0)
      if use_causal_mask:
        causal = ops.expand_dims(key_pos, 0) <= ops.expand_dims(query_pos, 1)
        combined = _and(combined, ops.expand_dims(causal, 0))
      if mask is not None:
        _check_mask_shape("mask", mask, (batch, length), name)
        combined = _and(combined, self._padding_masks(mask, None))
    else:
      key_len = length
      combined = None
      if use_causal_mask:
        pos = ops.arange(seq_len, dtype="int32")
        causal = ops.expand_dims(pos, 0) <= ops.expand_dims(pos, 1)
        combined = ops.expand_dims(causal, 0)
      if mask is not None:
        _check_mask_shape("mask", mask, (batch, length), name)
        combined = _and(combined, self._padding_masks(mask, mask))
    if attention_mask is not None:
      attention_mask = ops.cast(attention_mask, "bool")
      if len(_static_shape(attention_mask)) == 2:
        _check_mask_shape("attention_mask", attention_mask, (length, key_len), name)
        attention_mask = ops.expand_dims(attention_mask, 0)
      _check_mask_shape("attention_mask", attention_mask, (batch, length, key_len), name)
      combined = _and(combined, attention_mask)

    context, scores = self._attend(query, key, value, combined, training,
                                   return_attention_scores, heads_first=heads_first)
    if heads_first:
      context = ops.transpose(context, (0, 2, 1, 3))
    output = self._project_output(context, combined)
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


@keras.saving.register_keras_serializable(package="t2t_lite")
class MultiHeadAttention(_MultiHeadAttentionBase):
  """Multi-head attention of x over a memory (e.g. a decoder over the encoder output).

  Queries come from x, keys and values from the memory through one fused [memory_size,
  N*(key_dim + value_dim)] projection. The attention math is `MultiHeadSelfAttention`'s.

  Args:
    num_heads: number of attention heads.
    key_dim: size of each query/key head; default x's hidden_size // num_heads.
    value_dim: size of each value head; default key_dim.
    dropout: dropout rate on the attention probabilities (training only, seeded).
    use_bias: whether the projections have biases.
    output_dim: size of the output's last axis; default x's hidden size.
    kernel_initializer: initializer of the projection kernels; default `FanInUniform()`.
    bias_initializer: initializer of the biases; default "zeros".
    seed: int seed of the attention dropout.
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

  Call arguments:
    x: [batch, length, hidden], the queries.
    memory: [batch, memory_length, memory_size]; may be None when `memory_kv` is given.
    mask: optional [batch, length] padding mask of x (also from Keras masking); padded query
      rows give zeros.
    memory_mask: optional [batch, memory_length] padding mask of the memory.
    training: whether dropout is active.
    memory_kv: optional {"key": [B, S, N, key_dim], "value": [B, S, N, value_dim]} from
      `compute_memory_kv(memory)`; it replaces the key/value projection of `memory`.
    return_attention_scores: also return the probabilities [B, N, length, memory_length].

  Example:

  >>> layer = MultiHeadAttention(num_heads=4)
  >>> x, memory = keras.random.normal((2, 3, 32)), keras.random.normal((2, 7, 32))
  >>> y = layer(x, memory)                        # [2, 3, 32]
  >>> kv = layer.compute_memory_kv(memory)        # once per sequence when decoding
  >>> y_step = layer(x[:, :1], None, memory_kv=kv)
  """

  def build(self, x_shape, memory_shape=None):
    self._check_input("x", _ShapeOnly(x_shape))
    self._resolve_dims(x_shape[-1])
    self._hidden_size = x_shape[-1]
    memory_size = x_shape[-1] if memory_shape is None else memory_shape[-1]
    self._memory_size = memory_size
    self._query_dense = self._dense(self.num_heads * self._key_dim, "query")
    self._query_dense.build(tuple(x_shape))
    self._kv_dense = self._dense(self.num_heads * (self._key_dim + self._value_dim), "kv")
    self._kv_dense.build((None, None, memory_size))
    self._output_dense = self._dense(self._output_dim, "output")
    self._output_dense.build(tuple(x_shape[:-1]) + (self.num_heads * self._value_dim,))
    self.built = True

  def compute_memory_kv(self, memory):
    """Projects the memory to keys and values once, for every decoding step to reuse.

    If the layer is not built yet it is built assuming x has the memory's hidden size.

    Args:
      memory: [batch, memory_length, memory_size].

    Returns:
      {"key": [batch, memory_length, num_heads, key_dim],
       "value": [batch, memory_length, num_heads, value_dim]}
    """
    self._check_input("memory", memory)
    if not self.built:
      self.build(tuple(memory.shape), tuple(memory.shape))
    memory = ops.cast(memory, self.compute_dtype)
    kv = _dense_2d(self._kv_dense, memory)
    key, value = ops.split(kv, [self.num_heads * self._key_dim], axis=-1)
    return {"key": self._split_heads(key, self._key_dim),
            "value": self._split_heads(value, self._value_dim)}

  def call(self, x, memory, mask=None, memory_mask=None, training=None, memory_kv=None,
           return_attention_scores=False):
    name = type(self).__name__
    self._check_input("x", x, self._hidden_size)
    if memory_kv is None:
      if memory is None:
        raise ValueError("%s: pass `memory` or `memory_kv`." % name)
      self._check_input("memory", memory, self._memory_size)
      memory_kv = self.compute_memory_kv(memory)
    key, value = memory_kv["key"], memory_kv["value"]
    batch, length = _static_shape(x)[:2]
    memory_length = _static_shape(key)[1]
    query = self._split_heads(_dense_2d(self._query_dense, x), self._key_dim)
    combined = None
    if mask is not None:
      _check_mask_shape("mask", mask, (batch, length), name)
    if memory_mask is not None:
      _check_mask_shape("memory_mask", memory_mask, (batch, memory_length), name)
    combined = self._padding_masks(mask, memory_mask)
    context, scores = self._attend(query, key, value, combined, training,
                                   return_attention_scores)
    output = self._project_output(context, combined)
    return (output, scores) if return_attention_scores else output

  def compute_output_shape(self, x_shape, memory_shape=None):
    return tuple(x_shape[:-1]) + (self.output_dim or x_shape[-1],)


class _ShapeOnly:
  """Lets `_check_input` validate a shape tuple as if it were a tensor."""

  def __init__(self, shape):
    self.shape = tuple(shape)
