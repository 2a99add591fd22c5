"""MultiHeadCrossAttention: attention of a sequence over a memory (a decoder over the encoder
output).

Queries come from x; keys and values from the memory, through one fused projection that
`compute_memory_kv` can run once per sequence, for every decoding step to reuse. The attention
math is `t2t_lite.layers.attention_base`'s, shared with `MultiHeadSelfAttention`.
"""
import keras
from keras import ops

from t2t_lite.layers.attention_base import MultiHeadAttentionBase
from t2t_lite.layers.attention_base import dense_2d
from t2t_lite.layers.attention_masks import ShapeOnly
from t2t_lite.layers.attention_masks import and_masks
from t2t_lite.layers.attention_masks import check_mask_shape
from t2t_lite.layers.attention_masks import padding_masks
from t2t_lite.layers.attention_masks import static_shape


@keras.saving.register_keras_serializable(package="t2t_lite")
class MultiHeadCrossAttention(MultiHeadAttentionBase):
  """Multi-head attention of x over a memory (e.g. a decoder over the encoder output).

  Cross-attention only: queries and keys come from different tensors, unlike
  `keras.layers.MultiHeadAttention`, which also serves as self-attention (here
  `MultiHeadSelfAttention`). `MultiHeadAttention` is this layer's former name, kept as an alias.

  Queries come from x, keys and values from the memory through one fused [memory_size,
  N*(key_dim + value_dim)] projection. The attention math is `MultiHeadSelfAttention`'s.

  Args: `MultiHeadAttentionBase`'s (num_heads, key_dim, value_dim, dropout, use_bias,
    output_dim, kernel_initializer, bias_initializer, seed, length_scale, **kwargs), and
    position_heads: how many heads (the first ones) attend by `attention_bias` alone, their
      queries zeroed: pointers to memory positions that no content can distract.

  Call arguments:
    x: [batch, length, hidden], the queries.
    memory: [batch, memory_length, memory_size]; may be None when `memory_kv` is given.
    mask: optional [batch, length] padding mask of x (also from Keras masking); padded query
      rows give zeros.
    memory_mask: optional [batch, memory_length] padding mask of the memory.
    attention_mask: optional boolean [batch, length, memory_length] mask (or broadcastable),
      True where a query may attend to a memory position (e.g. the same example of a packed
      row).
    training: whether dropout is active.
    memory_kv: optional {"key": [B, N, S, key_dim], "value": [B, N, S, value_dim]} from
      `compute_memory_kv(memory)`; it replaces the key/value projection of `memory`. x may
      then hold G rows per memory row (batch G * B): rows g*G .. g*G+G-1 of x attend to
      memory row g, as the G beams of one input do in beam search, which then reads the
      memory once for all of them instead of from G copies. `memory_mask` and a per-row
      `attention_bias` have the memory's B rows then; `mask` and `attention_mask` x's.
    return_attention_scores: also return the probabilities [B, N, length, memory_length].
    attention_bias: optional float32 [batch or 1, num_heads, length, memory_length] added to
      the attention logits (positions relative to the memory's).

  Example:

  >>> layer = MultiHeadCrossAttention(num_heads=4)
  >>> x, memory = keras.random.normal((2, 3, 32)), keras.random.normal((2, 7, 32))
  >>> y = layer(x, memory)                        # [2, 3, 32]
  >>> kv = layer.compute_memory_kv(memory)        # once per sequence when decoding
  >>> y_step = layer(x[:, :1], None, memory_kv=kv)
  """

  def __init__(self, num_heads, position_heads=0, **kwargs):
    super().__init__(num_heads, **kwargs)
    if not 0 <= int(position_heads) <= num_heads:
      raise ValueError("%s: `position_heads` must be in [0, num_heads]; received %r." %
                       (type(self).__name__, position_heads))
    self.position_heads = int(position_heads)

  def get_config(self):
    config = super().get_config()
    config["position_heads"] = self.position_heads
    return config

  def build(self, x_shape, memory_shape=None):
    self._check_input("x", ShapeOnly(x_shape))
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
      {"key": [batch, num_heads, memory_length, key_dim],
       "value": [batch, num_heads, memory_length, value_dim]}: heads first, so that the
      attention reads them with batched matmuls and never transposes them again (see
      `t2t_lite.layers.attention_base`).
    """
    self._check_input("memory", memory)
    if not self.built:
      self.build(tuple(memory.shape), tuple(memory.shape))
    kv = self._project_memory(memory)
    n, k, v = self.num_heads, self._key_dim, self._value_dim
    if k == v:
      # One transpose to [2, B, N, S, dim]; the split along the first axis does not copy.
      shape = ops.shape(kv)
      kv = ops.transpose(ops.reshape(kv, (shape[0], shape[1], 2, n, k)), (2, 0, 3, 1, 4))
      key, value = (ops.squeeze(t, 0) for t in ops.split(kv, 2, axis=0))
    else:
      key, value = ops.split(kv, [n * k], axis=-1)
      key = ops.transpose(self._split_heads(key, k), (0, 2, 1, 3))
      value = ops.transpose(self._split_heads(value, v), (0, 2, 1, 3))
    return {"key": key, "value": value}

  def _project_memory(self, memory):
    """The fused key/value projection of the memory: [B, S, N*(key_dim + value_dim)]."""
    return dense_2d(self._kv_dense, ops.cast(memory, self.compute_dtype))

  def call(self, x, memory, mask=None, memory_mask=None, training=None, memory_kv=None,
           return_attention_scores=False, attention_mask=None, attention_bias=None):
    name = type(self).__name__
    self._check_input("x", x, self._hidden_size)
    # With `memory_kv` (decoding: one query position a step) the keys and values are heads
    # first, read in place by batched matmuls. A full pass over `memory` (training) keeps them
    # [B, S, N, dim] for einsums that transpose internally: measured 1.26x faster forward and
    # backward without XLA (B=64, T=S=64, 4 heads of 64) than transposing them to heads first.
    heads_first = memory_kv is not None
    if memory_kv is None:
      if memory is None:
        raise ValueError("%s: pass `memory` or `memory_kv`." % name)
      self._check_input("memory", memory, self._memory_size)
      key, value = ops.split(self._project_memory(memory), [self.num_heads * self._key_dim],
                             axis=-1)
      key, value = self._split_heads(key, self._key_dim), self._split_heads(value,
                                                                           self._value_dim)
    else:
      key, value = memory_kv["key"], memory_kv["value"]
    batch, length = static_shape(x)[:2]
    memory_length = static_shape(key)[2 if heads_first else 1]
    query = dense_2d(self._query_dense, x)
    if heads_first:
      # Memory row g serves rows g*G .. g*G+G-1 of x (G = 1 unless beams share the memory):
      # their queries become G*T query positions of row g, so that one batched matmul per
      # memory row and head reads its keys for all of them.
      x_shape = ops.shape(x)
      memory_batch = ops.shape(key)[0]
      query = ops.reshape(query, (memory_batch, -1, self.num_heads, self._key_dim))
      if mask is not None:
        check_mask_shape("mask", mask, (batch, length), name)
        mask = ops.reshape(mask, (memory_batch, -1))
      if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        check_mask_shape("attention_mask", attention_mask, (batch, length, memory_length),
                         name)
        attention_mask = ops.reshape(
            ops.broadcast_to(attention_mask, (x_shape[0], x_shape[1], ops.shape(key)[2])),
            (memory_batch, -1, ops.shape(key)[2]))
      if attention_bias is not None and length != 1:
        # [B or 1, N, T, S] -> [B or 1, N, G*T, S] (with T = 1 it broadcasts as it is).
        attention_bias = ops.tile(attention_bias, (1, 1, x_shape[0] // memory_batch, 1))
      x_batch = batch if batch is not None else x_shape[0]
      x_length = length if length is not None else x_shape[1]
      batch = static_shape(key)[0]
    else:
      query = self._split_heads(query, self._key_dim)
    if self.position_heads:
      # The first `position_heads` heads read no content: their logits are attention_bias's.
      keep = ops.cast(ops.arange(self.num_heads) >= self.position_heads, query.dtype)
      query = query * ops.reshape(keep, (self.num_heads, 1))
    if heads_first:
      query = ops.transpose(query, (0, 2, 1, 3))
    if mask is not None and not heads_first:
      check_mask_shape("mask", mask, (batch, length), name)
    if memory_mask is not None:
      check_mask_shape("memory_mask", memory_mask, (batch, memory_length), name)
    combined = padding_masks(mask, memory_mask)
    if attention_mask is not None:
      if not heads_first:
        attention_mask = ops.cast(attention_mask, "bool")
        check_mask_shape("attention_mask", attention_mask, (batch, length, memory_length),
                         name)
      combined = and_masks(combined, attention_mask)
    output, scores = self._attention_output(query, key, value, combined, training,
                                            return_attention_scores, heads_first,
                                            attention_bias)
    if heads_first:  # back to x's rows: [B, G*T, out] -> [G*B, T, out]
      output = ops.reshape(output, (x_batch, x_length, self._output_dim))
      if scores is not None:  # [B, N, G*T, S] -> [G*B, N, T, S]
        memory_length = memory_length or ops.shape(scores)[-1]
        scores = ops.reshape(ops.transpose(
            ops.reshape(scores, (memory_batch, self.num_heads, -1, x_length, memory_length)),
            (0, 2, 1, 3, 4)), (x_batch, self.num_heads, x_length, memory_length))
    return (output, scores) if return_attention_scores else output

  def compute_output_shape(self, x_shape, memory_shape=None):
    return tuple(x_shape[:-1]) + (self.output_dim or x_shape[-1],)


# The former name: importable as an alias, and registered so that a `.keras` file saved when
# the class was "t2t_lite>MultiHeadAttention" still loads (as this class).
MultiHeadAttention = MultiHeadCrossAttention
keras.saving.get_custom_objects()["t2t_lite>MultiHeadAttention"] = MultiHeadCrossAttention
