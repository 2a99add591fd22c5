"""Transformer encoder and decoder blocks, pre-norm (tensor2tensor's layout) or post-norm.

With `norm_first=True` (the default; tensor2tensor's layer_preprocess_sequence="n",
layer_postprocess_sequence="da") each sublayer is `x + dropout(sublayer(layer_norm(x)))` and the
final layer norm of a stack is the model's job. With `norm_first=False` (the original paper's,
tensor2tensor's transformer_base_v1 "" / "dan", keras-hub's default) it is
`layer_norm(x + dropout(sublayer(x)))`, and a stack needs no final layer norm. The decoder block's self-attention keeps a key/value cache for incremental decoding
(see `t2t_lite.layers.attention` for its structure), and its attention over the encoder output
can reuse keys and values projected once per sequence (`compute_memory_kv`).
"""
import keras
from keras import ops

from t2t_lite.layers.attention import MultiHeadCrossAttention
from t2t_lite.layers.attention import MultiHeadSelfAttention
from t2t_lite.layers.dense import Dense
from t2t_lite.layers.dropout import Dropout


class _TransformerBlockBase(keras.layers.Layer):
  """Arguments, feed-forward network and config shared by the encoder and decoder blocks.

  Args:
    num_heads: number of attention heads (must divide the hidden size).
    filter_size: size of the feed-forward network's inner layer.
    dropout: dropout on each sublayer's output, before the residual add.
    attention_dropout: dropout on the attention probabilities.
    relu_dropout: dropout after the feed-forward inner activation.
    activation: the feed-forward activation.
    layer_norm_epsilon: epsilon of the layer norms.
    norm_first: pre-norm (True, tensor2tensor's) or post-norm (False) sublayers.
    kernel_initializer: initializer of the attention and feed-forward kernels; default each
      layer's own (`FanInUniform`).
    seed: optional int; seeds the block's dropouts.
    attention_use_bias: whether the attention projections have biases (tensor2tensor's have
      none; the feed-forward layers always do).
    memory_length_scale, memory_position_heads: the attention over memory's `length_scale`
      (0: off) and `position_heads` (decoder blocks only).
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
  """

  def __init__(self, num_heads, filter_size, dropout=0.0, attention_dropout=0.0,
               relu_dropout=0.0, activation="relu", layer_norm_epsilon=1e-6, norm_first=True,
               kernel_initializer=None, seed=None, attention_use_bias=True,
               memory_length_scale=0.0, memory_position_heads=0, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.filter_size = filter_size
    self.dropout = dropout
    self.attention_dropout = attention_dropout
    self.relu_dropout = relu_dropout
    self.activation = keras.activations.get(activation)
    self.layer_norm_epsilon = layer_norm_epsilon
    self.norm_first = bool(norm_first)
    # None: each sublayer's own default (FanInUniform); otherwise copied per sublayer.
    self.kernel_initializer = (None if kernel_initializer is None else
                               keras.initializers.get(kernel_initializer))
    self.seed = seed
    self.attention_use_bias = bool(attention_use_bias)
    self.memory_length_scale = float(memory_length_scale or 0.0)
    self.memory_position_heads = int(memory_position_heads or 0)
    self.supports_masking = True
    self._hidden_size = None
    self._cross_attention = None

  def _seed(self, offset):
    return None if self.seed is None else self.seed + offset

  def _norm(self, name):
    return keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon,
                                           dtype=self.dtype_policy, name=name)

  def _initializer(self):
    """A fresh copy of kernel_initializer (None: the sublayer's default), so that unseeded
    copies draw different values."""
    if self.kernel_initializer is None:
      return None
    return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

  def _sublayer_input(self, x, norm):
    """What a sublayer reads: layer_norm(x) before it (pre-norm), or x itself (post-norm)."""
    return norm(x) if self.norm_first else x

  def _residual(self, x, y, norm):
    """x + y (pre-norm), or layer_norm(x + y) (post-norm)."""
    return x + y if self.norm_first else norm(x + y)

  def _dropout(self, rate, offset, name):
    return Dropout(rate, seed=self._seed(offset), dtype=self.dtype_policy,
                                name=name)

  def _check_x(self, x_shape):
    if len(x_shape) != 3 or x_shape[-1] is None:
      raise ValueError("%s: `x` must have rank 3, (batch, length, hidden) with a known hidden "
                       "size; received shape %s." % (type(self).__name__, tuple(x_shape)))

  def _build_ffn(self, x_shape):
    hidden = x_shape[-1]
    self._ffn_norm = self._norm("ffn_norm")
    self._ffn_norm.build(x_shape)
    self._ffn_inner = Dense(self.filter_size, activation=self.activation,
                            kernel_initializer=self._initializer(), dtype=self.dtype_policy,
                            name="ffn_inner")
    self._ffn_inner.build(x_shape)
    self._relu_dropout = self._dropout(self.relu_dropout, 1, "relu_dropout")
    self._ffn_outer = Dense(hidden, kernel_initializer=self._initializer(),
                            dtype=self.dtype_policy, name="ffn_outer")
    self._ffn_outer.build(tuple(x_shape[:-1]) + (self.filter_size,))
    self._ffn_dropout = self._dropout(self.dropout, 2, "ffn_dropout")

  def _ffn(self, x, training):
    # On [B*T, D] rows: a rank-3 Dense input is a tf.tensordot on TensorFlow, with extra shape
    # ops and reshapes per call (see layers/attention_base.py's dense_2d).
    shape = ops.shape(x)
    rows = ops.reshape(x, (-1, shape[-1]))
    # Under layers.dense.column_parallel (decoding) the inner layer's column blocks feed the
    # outer's row blocks with no concatenation; otherwise this is the plain pair.
    hidden = [self._relu_dropout(h, training=training)
              for h in self._ffn_inner.split_outputs(self._sublayer_input(rows, self._ffn_norm))]
    y = self._ffn_outer.join_inputs(hidden)
    y = self._residual(rows, self._ffn_dropout(y, training=training), self._ffn_norm)
    return ops.reshape(y, shape)

  def compute_mask(self, x, mask=None, *args, **kwargs):
    return mask

  def compute_output_shape(self, x_shape, *args, **kwargs):
    return tuple(x_shape)

  def get_config(self):
    config = super().get_config()
    config.update({
        "num_heads": self.num_heads,
        "filter_size": self.filter_size,
        "dropout": self.dropout,
        "attention_dropout": self.attention_dropout,
        "relu_dropout": self.relu_dropout,
        "activation": keras.activations.serialize(self.activation),
        "layer_norm_epsilon": self.layer_norm_epsilon,
        "norm_first": self.norm_first,
        "kernel_initializer": (None if self.kernel_initializer is None else
                               keras.initializers.serialize(self.kernel_initializer)),
        "seed": self.seed,
        "attention_use_bias": self.attention_use_bias,
        "memory_length_scale": self.memory_length_scale,
        "memory_position_heads": self.memory_position_heads,
    })
    return config


@keras.saving.register_keras_serializable(package="t2t_lite")
class TransformerEncoderBlock(_TransformerBlockBase):
  """Self-attention + feed-forward block of a Transformer encoder (pre- or post-norm).

  Args: those of the encoder and decoder blocks, documented once in `_TransformerBlockBase`.

  Call arguments:
    x: [batch, length, hidden].
    mask: optional [batch, length] padding mask (True = real token); also from Keras masking.
    training: whether dropout is active.
    attention_mask: optional boolean [batch, length, length], True where position i may attend
      to position j (e.g. the same example of a packed row).
    attention_bias: optional float32 [batch or 1, num_heads, length, length] added to the
      attention logits (relative positions, `layers.RelativePositionBias`).

  Example:

  >>> block = TransformerEncoderBlock(num_heads=4, filter_size=64)
  >>> y = block(keras.random.normal((2, 10, 32)))   # [2, 10, 32]
  """

  def build(self, x_shape):
    x_shape = tuple(x_shape)
    self._check_x(x_shape)
    self._hidden_size = x_shape[-1]
    self._attention_norm = self._norm("attention_norm")
    self._attention_norm.build(x_shape)
    self._attention = MultiHeadSelfAttention(
        self.num_heads, dropout=self.attention_dropout, kernel_initializer=self._initializer(),
        use_bias=self.attention_use_bias, seed=self._seed(3), dtype=self.dtype_policy,
        name="self_attention")
    self._attention.build(x_shape)
    self._attention_dropout = self._dropout(self.dropout, 4, "attention_output_dropout")
    self._build_ffn(x_shape)
    self.built = True

  def call(self, x, mask=None, training=None, attention_mask=None, attention_bias=None):
    y = self._attention(self._sublayer_input(x, self._attention_norm), mask=mask,
                        attention_mask=attention_mask, training=training,
                        attention_bias=attention_bias)
    x = self._residual(x, self._attention_dropout(y, training=training), self._attention_norm)
    return self._ffn(x, training)


@keras.saving.register_keras_serializable(package="t2t_lite")
class TransformerDecoderBlock(_TransformerBlockBase):
  """Transformer decoder block: causal self-attention, attention over memory, FFN.

  With `memory=None` (and no `memory_kv`) the attention over memory is skipped: a decoder-only
  (language model) block. The block is built with that attention only when it first sees a
  memory, so a decoder-only block holds no unused weights.

  Args: those of the encoder and decoder blocks, documented once in `_TransformerBlockBase`.

  Call arguments:
    x: [batch, length, hidden], the (shifted) targets.
    memory: optional [batch, memory_length, memory_size], the encoder output.
    mask: optional [batch, length] padding mask of x; also from Keras masking.
    memory_mask: optional [batch, memory_length] padding mask of the memory.
    training: whether dropout is active.
    cache: optional self-attention cache from `init_cache`; the call then returns
      (x, new_cache).
    cache_index: position of x's first step in the cache (int or scalar tensor); None:
      after the cached positions (a growing cache, `init_cache(batch_size, None)`).
    memory_kv: optional keys/values from `compute_memory_kv(memory)`, used instead of
      projecting `memory` again on every decoding step.
    attention_mask: optional boolean [batch, length, length] for the self-attention (with the
      causal mask), e.g. the same example of a packed row.
    memory_attention_mask: optional boolean [batch, length, memory_length] for the attention
      over memory.
    attention_bias, memory_attention_bias: optional float32 [batch or 1, num_heads, length,
      key_length] added to the logits of the self-attention (key_length: the cache's length
      with a cache) and of the attention over memory (relative positions).

  Example:

  >>> block = TransformerDecoderBlock(num_heads=4, filter_size=64)
  >>> x, memory = keras.random.normal((2, 5, 32)), keras.random.normal((2, 7, 32))
  >>> y = block(x, memory)                                   # full causal pass
  >>> cache = block.init_cache(batch_size=2, max_length=5)
  >>> kv = block.compute_memory_kv(memory)
  >>> for i in range(5):
  ...   y_i, cache = block(x[:, i:i + 1], cache=cache, cache_index=i, memory_kv=kv)
  """

  def build(self, x_shape, memory_shape=None):
    x_shape = tuple(x_shape)
    self._check_x(x_shape)
    self._hidden_size = x_shape[-1]
    self._self_attention_norm = self._norm("self_attention_norm")
    self._self_attention_norm.build(x_shape)
    self._self_attention = MultiHeadSelfAttention(
        self.num_heads, dropout=self.attention_dropout, kernel_initializer=self._initializer(),
        use_bias=self.attention_use_bias, seed=self._seed(3), dtype=self.dtype_policy,
        name="self_attention")
    self._self_attention.build(x_shape)
    self._self_attention_dropout = self._dropout(self.dropout, 4, "self_attention_dropout")
    self._cross_attention_norm = self._norm("cross_attention_norm")
    self._cross_attention = MultiHeadCrossAttention(
        self.num_heads, dropout=self.attention_dropout, kernel_initializer=self._initializer(),
        use_bias=self.attention_use_bias, seed=self._seed(5), dtype=self.dtype_policy,
        length_scale=self.memory_length_scale, position_heads=self.memory_position_heads,
        name="cross_attention")
    self._cross_attention_dropout = self._dropout(self.dropout, 6, "cross_attention_dropout")
    if memory_shape is not None:
      self._build_cross_attention(x_shape, tuple(memory_shape))
    self._build_ffn(x_shape)
    self.built = True

  def _build_cross_attention(self, x_shape, memory_shape):
    self._cross_attention_norm.build(x_shape)
    self._cross_attention.build(x_shape, memory_shape)
    self._memory_size = memory_shape[-1]

  def get_build_config(self):
    # Also records a memory size learnt after build (a first call with memory_kv only), so that
    # load_model recreates the attention over memory.
    config = super().get_build_config() or {}
    if self._cross_attention is not None and self._cross_attention.built:
      config["memory_size"] = self._memory_size
    return config

  def build_from_config(self, config):
    config = dict(config)
    memory_size = config.pop("memory_size", None)
    super().build_from_config(config)
    if memory_size is not None and not self._cross_attention.built:
      self._build_cross_attention((None, None, self._hidden_size), (None, None, memory_size))

  def init_cache(self, batch_size, max_length, dtype=None):
    """An empty self-attention cache, {"key": [B, N, L, K], "value": [B, N, L, V]} (N heads,
    L = max_length positions; None: a cache that grows, see `MultiHeadSelfAttention`)."""
    if not self.built:
      raise ValueError("%s: build the block before init_cache: call it once or "
                       "block.build((None, None, hidden_size))." % type(self).__name__)
    return self._self_attention.init_cache(batch_size, max_length, dtype)

  def compute_memory_kv(self, memory):
    """Projects the memory to the attention's keys and values once per sequence."""
    if not self.built:
      self.build((None, None, memory.shape[-1]), tuple(memory.shape))
    if not self._cross_attention.built:
      self._build_cross_attention((None, None, self._hidden_size), tuple(memory.shape))
    return self._cross_attention.compute_memory_kv(memory)

  def call(self, x, memory=None, mask=None, memory_mask=None, training=None, cache=None,
           cache_index=None, memory_kv=None, attention_mask=None, memory_attention_mask=None,
           attention_bias=None, memory_attention_bias=None):
    y = self._self_attention(self._sublayer_input(x, self._self_attention_norm), mask=mask,
                             attention_mask=attention_mask, use_causal_mask=True,
                             training=training, cache=cache, cache_index=cache_index,
                             attention_bias=attention_bias)
    if cache is not None:
      y, cache = y
    x = self._residual(x, self._self_attention_dropout(y, training=training),
                       self._self_attention_norm)
    if memory is not None or memory_kv is not None:
      if not self._cross_attention.built:
        self._build_cross_attention(
            tuple(x.shape), (None, None, self._hidden_size) if memory is None else
            tuple(memory.shape))
      y = self._cross_attention(self._sublayer_input(x, self._cross_attention_norm), memory,
                                mask=mask, memory_mask=memory_mask, training=training,
                                memory_kv=memory_kv, attention_mask=memory_attention_mask,
                                attention_bias=memory_attention_bias)
      x = self._residual(x, self._cross_attention_dropout(y, training=training),
                         self._cross_attention_norm)
    x = self._ffn(x, training)
    return x if cache is None else (x, cache)
