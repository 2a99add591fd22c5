"""The transformer's position schemes beyond its embeddings' absolute positions.

`PositionScheme` holds what `pos` and `memory_pos` add to a `Transformer` (see
`TransformerArgs`): the randomized training positions of `pos="random"`, the T5 relative biases
of `pos="relative"` and the length-relative bias of `memory_pos="relative"`, and computes them
for a whole (possibly packed) sequence in training and for one decoding step. With the default
hparams (`pos="timing"`, `memory_pos="none"`) it holds no weights and returns None everywhere,
so runs saved before it existed restore unchanged.
"""
import keras
from keras import ops

from t2t_lite import layers


def _row_positions(position, ids):
  """Each token's index within its example: `position` for packed rows, else 0..T-1 ([1, T])."""
  if position is not None:
    return ops.cast(position, "int32")
  return ops.expand_dims(ops.arange(ops.shape(ids)[1], dtype="int32"), 0)


@keras.saving.register_keras_serializable(package="t2t_lite")
class PositionScheme(keras.layers.Layer):
  """Randomized positions and relative position biases of a `Transformer`.

  Args:
    num_heads: the attention heads.
    random_position_range: 0, or the range randomized training positions are drawn from.
    relative_bias: T5's bucketed bias in the encoder's and the decoder's self-attention.
    memory_relative_bias: a bias on the attention over the inputs, bucketed by the decoder
      position against each input position counted from the input's start (one table) and
      from its end (another): the decoder can point at input i (copy) or at input n - 1 - i
      (reversal) at any length n, and every offset past `num_buckets`'s range reads a bucket
      trained on.
    num_buckets, max_distance, bias_scale: the biases' buckets and scale
      (`layers.RelativePositionBias`).
    has_inputs: whether the model has an encoder.
    seed: optional int, seeds the randomized positions.
  """

  def __init__(self, num_heads, random_position_range=0, relative_bias=False,
               memory_relative_bias=False, num_buckets=32, max_distance=128, bias_scale=1.0,
               has_inputs=True, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.random_position_range = int(random_position_range)
    self.relative_bias = bool(relative_bias)
    self.memory_relative_bias = bool(memory_relative_bias) and has_inputs
    self.num_buckets = num_buckets
    self.max_distance = max_distance
    self.bias_scale = bias_scale
    self.has_inputs = has_inputs
    self.seed = seed
    self.seed_generator = (keras.random.SeedGenerator(seed) if self.random_position_range
                           else None)

    def bias(name, bidirectional):
      return layers.RelativePositionBias(num_heads, num_buckets, max_distance,
                                         bidirectional=bidirectional, scale=bias_scale,
                                         name=name)

    self.encoder_bias = (bias("encoder_relative_bias", True)
                         if self.relative_bias and has_inputs else None)
    self.decoder_bias = bias("decoder_relative_bias", False) if self.relative_bias else None
    self.memory_bias_from_start = (bias("memory_bias_from_start", True)
                                   if self.memory_relative_bias else None)
    self.memory_bias_from_end = (bias("memory_bias_from_end", True)
                                 if self.memory_relative_bias else None)

    # The tables exist from the start (not at a first call, which may be inside a traced
    # training step); the scheme itself is never called, only its methods.
    for layer in (self.encoder_bias, self.decoder_bias, self.memory_bias_from_start,
                  self.memory_bias_from_end):
      if layer is not None:
        layer.build()
    self.built = True

  @staticmethod
  def needed(args):
    """Whether `TransformerArgs` args use any of these schemes."""
    return bool(args.random_position_range or args.relative_bias or args.memory_relative_bias)

  def embedding_positions(self, ids, position, segmentation, training):
    """The positions the embedding adds: randomized in training with `pos="random"`, else
    `position` (None: the embedding's own 0..T-1)."""
    if not (training and self.random_position_range):
      return position
    mask = ops.not_equal(ids, 0) if segmentation is None else ops.greater(segmentation, 0)
    base = ops.broadcast_to(_row_positions(position, ids), ops.shape(ids))
    return layers.random_positions(base, mask, self.random_position_range,
                                   self.seed_generator, segmentation)

  def encoder_bias_of(self, inputs, position):
    """[B or 1, N, T, T] for the encoder's self-attention, or None."""
    if self.encoder_bias is None:
      return None
    p = _row_positions(position, inputs)
    return self.encoder_bias(p, p)

  def decoder_bias_of(self, decoder_input, position):
    """[B or 1, N, T, T] for the decoder's self-attention (teacher forcing), or None."""
    if self.decoder_bias is None:
      return None
    p = _row_positions(position, decoder_input)
    return self.decoder_bias(p, p)

  def memory_bias_of(self, query_positions, encoder_mask, encoder_position=None,
                     encoder_segmentation=None):
    """[B, N, T, S] for the attention over the inputs, or None.

    query_positions: int [B or 1, T], the decoder positions within their examples.
    """
    if not self.memory_relative_bias or encoder_mask is None:
      return None
    from_start, from_end = layers.length_relative_positions(encoder_mask, encoder_position,
                                                            encoder_segmentation)
    return (self.memory_bias_from_start(query_positions, from_start) +
            self.memory_bias_from_end(query_positions, from_end))

  def step_biases(self, index, cache_length, memory_mask):
    """(self-attention bias [1, N, 1, cache_length], memory bias [B, N, 1, S]) of decoding
    position `index`; either may be None."""
    query = ops.reshape(ops.cast(index, "int32"), (1, 1))
    self_bias = None
    if self.decoder_bias is not None:
      self_bias = self.decoder_bias(
          query, ops.expand_dims(ops.arange(cache_length, dtype="int32"), 0))
    return self_bias, self.memory_bias_of(query, memory_mask)

  def get_config(self):
    config = super().get_config()
    config.update({"num_heads": self.num_heads,
                   "random_position_range": self.random_position_range,
                   "relative_bias": self.relative_bias,
                   "memory_relative_bias": self.memory_relative_bias,
                   "num_buckets": self.num_buckets, "max_distance": self.max_distance,
                   "bias_scale": self.bias_scale,
                   "has_inputs": self.has_inputs, "seed": self.seed})
    return config
