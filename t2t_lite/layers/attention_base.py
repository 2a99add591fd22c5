"""The attention math shared by `MultiHeadSelfAttention` and `MultiHeadCrossAttention`.

`MultiHeadAttentionBase` holds the arguments, the projections' construction and the attention
itself. Its subclasses project queries, keys and values to [B, T, num_heads, dim], combine their
masks into one boolean [B or 1, T, S] tensor (True = may attend; see
`t2t_lite.layers.attention_masks`) and call `_attend` and `_project_output`. `_attend`
computes softmax(Q K^T / sqrt(key_dim)) V in one of these layouts:

* [B, N, T, dim], heads first (on TensorFlow: self-attention, the key/value cache and the
  memory's keys and values kept for decoding, `compute_memory_kv`): the heads are batched
  matmuls over (B, N) with no transpose of the keys and values, which measures ~15% faster
  on CPU than ops.dot_product_attention's einsums for self-attention (benchmarks/attention.py)
  and ~3x faster for a decoding step, whose einsums would transpose the whole cache every
  step;
* [B, T, N, dim] (attention over a whole memory in training, and every attention on other
  backends): `keras.ops.dot_product_attention` (fused kernels elsewhere: cuDNN, SDPA) when
  neither dropout nor the scores are needed, and the same steps written out otherwise.

All paths give the same numbers (tests/test_layers_attention.py). Logits are masked and
soft-maxed in float32 whatever the dtype policy, so the mask value never overflows under
float16 or bfloat16. A query row whose keys are all masked gives zeros, never NaN.
"""
import math

import keras
from keras import ops

from t2t_lite.layers import dropout as dropout_lib
from t2t_lite.layers.attention_masks import check_input
from t2t_lite.layers.attention_masks import static_shape
from t2t_lite.layers.dense import Dense
from t2t_lite.layers.dense import FanInUniform

# Added to masked logits (always float32, see `_attend`): exp() of it is exactly 0 and it stays
# finite whatever the compute dtype.
MASK_VALUE = -1e9


def dense_2d(dense, x):
  """dense(x) for x of shape [B, T, H], as one 2-D matmul.

  keras.ops.matmul of a rank-3 input is a tf.tensordot on TensorFlow, whose extra shape ops
  and reshapes per call (and their gradients) cost a few percent at small sizes
  (benchmarks/attention.py); the result is the same.
  """
  shape = ops.shape(x)
  y = dense(ops.reshape(x, (-1, shape[-1])))
  return ops.reshape(y, (shape[0], shape[1], dense.units))


class MultiHeadAttentionBase(keras.layers.Layer):
  """The attention math shared by `MultiHeadSelfAttention` and `MultiHeadCrossAttention`.

  Subclasses project queries, keys and values to [B, T, num_heads, dim], combine their masks
  into one boolean [B or 1, T, S] tensor and call `_attend` and `_project_output`.

  Args:
    num_heads: number of attention heads.
    key_dim: size of each query/key head; default the queries' hidden_size // num_heads (the
      hidden size must then be divisible by num_heads).
    value_dim: size of each value head; default key_dim.
    dropout: dropout rate on the attention probabilities (training only, seeded).
    use_bias: whether the projections have biases.
    output_dim: size of the output's last axis; default the queries' hidden size.
    kernel_initializer: initializer of the projection kernels; default `FanInUniform()`.
    bias_initializer: initializer of the biases; default "zeros".
    seed: int seed of the attention dropout.
    length_scale: 0 (off), or L > 1: each query row's logits times log(n) / log(L), n its
      number of unmasked keys (attention as sharp over many more keys than trained on).
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
  """

  def __init__(self, num_heads, key_dim=None, value_dim=None, dropout=0.0, use_bias=True,
               output_dim=None, kernel_initializer=None, bias_initializer="zeros", seed=None,
               length_scale=0.0, **kwargs):
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
    if length_scale and length_scale <= 1:
      raise ValueError("%s: `length_scale` must be 0 (off) or > 1; received %r." %
                       (type(self).__name__, length_scale))
    self.length_scale = float(length_scale or 0.0)
    self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None
    self.supports_masking = True
    # keras.ops.dot_product_attention takes [B, T, N, dim]; on the TensorFlow backend it is an
    # einsum composition whose transposes cost more than the attention (1.0x Keras's time vs
    # 0.8x for heads first, benchmarks/attention.py; a decoding step's einsums copied the
    # whole cache), so there self-attention and decoding keep the heads first (attention over
    # a whole memory measured faster through it). Other backends map it to fused kernels
    # (cuDNN, SDPA): use it.
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
    check_input(type(self).__name__, name, x, hidden_size)

  def _split_heads(self, x, dim):
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1], self.num_heads, dim))

  def _attend(self, query, key, value, mask, training, return_scores, heads_first=False,
              bias=None):
    """softmax(Q K^T / sqrt(key_dim) + bias) V over every head.

    Args:
      query: [B, T, N, key_dim]; key: [B, S, N, key_dim]; value: [B, S, N, value_dim]; or,
        with `heads_first`, [B, N, T, key_dim], [B, N, S, key_dim], [B, N, S, value_dim].
      mask: None or a boolean tensor broadcastable to [B, T, S]; True where a query may attend.
      training: whether dropout on the attention probabilities is active.
      return_scores: whether to return the probabilities too.
      heads_first: the layout of query, key, value and of the returned context.
      bias: optional float32 [B or 1, N, T, S] added to the logits (relative positions).

    Returns:
      (context [B, T, N, value_dim] (or [B, N, T, value_dim] with heads_first), probabilities
      [B, N, T, S] or None). Probabilities of a query row whose keys are all masked are zero.
    """
    scale = 1.0 / math.sqrt(self._key_dim)
    head_mask = None if mask is None else ops.expand_dims(mask, 1)  # [B|1, 1, T, S]
    use_dropout = self.dropout > 0 and bool(training)
    fused = (not use_dropout and not return_scores and bias is None and
             not self.length_scale)
    if fused and not self._own_kernels:
      # Other backends map ops.dot_product_attention to fused kernels; it takes [B, T, N, dim].
      if heads_first:
        query, key, value = (ops.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
      context = ops.dot_product_attention(query, key, value, mask=head_mask, scale=scale)
      return (ops.transpose(context, (0, 2, 1, 3)) if heads_first else context), None
    if fused and not heads_first:
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
    if bias is not None:
      logits = logits + ops.cast(bias, "float32")
    if self.length_scale:
      logits = logits * self._length_factor(head_mask, ops.shape(key)[2 if heads_first else 1])
    if head_mask is not None:
      logits = ops.where(head_mask, logits, MASK_VALUE)
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

  def _length_factor(self, head_mask, key_length):
    """log(n) / log(length_scale) per query row, n its number of keys (scalable softmax,
    Nakanishi 2025): logits that make an attention sharp over `length_scale` keys keep it as
    sharp over more keys, where an unscaled softmax spreads thinner as n grows."""
    if head_mask is None:
      keys = ops.cast(key_length, "float32")
    else:
      keys = ops.sum(ops.cast(head_mask, "float32"), axis=-1, keepdims=True)
    return ops.log(ops.maximum(keys, 1.0)) / math.log(self.length_scale)

  def _attention_output(self, query, key, value, mask, training, return_scores, heads_first,
                        bias):
    """`_attend`, then `_project_output`: (output [B, T, output_dim], probabilities or None)."""
    context, scores = self._attend(query, key, value, mask, training, return_scores,
                                   heads_first=heads_first, bias=bias)
    if heads_first:
      context = ops.transpose(context, (0, 2, 1, 3))
    return self._project_output(context, mask), scores

  def _project_output(self, context, mask):
    """[B, T, N, value_dim] -> [B, T, output_dim]; rows with no key to attend to are zeros."""
    shape = ops.shape(context)
    output = self._output_dense(ops.reshape(context, (-1, self.num_heads * self._value_dim)))
    output = ops.reshape(output, (shape[0], shape[1], self._output_dim))
    if mask is not None:
      row_valid = ops.any(mask, axis=-1, keepdims=True)  # [B|1, T, 1]
      output = output * ops.cast(row_valid, output.dtype)
    return output

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
        "length_scale": self.length_scale,
    })
    return config

