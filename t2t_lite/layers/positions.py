"""Position schemes beyond the embeddings' absolute ones, for sequences longer than trained.

* `RelativePositionBias`: T5's bucketed relative bias (Raffel et al. 2020, section 2.1): a
  learned scalar per head and bucket of the offset key - query, added to the attention logits.
  Offsets below `num_buckets // 4` (bidirectional) get a bucket each, larger ones share
  logarithmically wider buckets, and every offset at or past `max_distance` falls in the last
  bucket of its direction, so an offset never seen in training reads a trained value.
* `length_relative_positions`: each input position counted from its example's end as well as
  from its start, which the model's attention over its inputs reads relative to the decoder's
  position (the decoder can then point at input i or at input n - 1 - i whatever n is).
* `random_positions`: randomized positions (Ruoss et al. 2023): in training, each example's
  positions are a sorted random subset of [0, max_position) instead of 0..n-1, so that an
  absolute scheme sees, during training, the positions that longer inputs use at decode time.

All of these take packed rows (tensor2tensor's `*_segmentation` / `*_position` features).
"""
import math

import keras
from keras import ops


def relative_buckets(offsets, num_buckets, max_distance, bidirectional=True):
  """int32 buckets of int offsets (key position - query position), any shape.

  Bidirectional: half the buckets for negative offsets (keys before the query), half for the
  rest; otherwise (causal attention) every positive offset shares bucket 0 with offset 0.
  Within a direction the first half of its buckets hold one offset each, the second half
  log-spaced ranges up to `max_distance`, where the last bucket starts.
  """
  offsets = ops.cast(offsets, "int32")
  buckets = ops.zeros_like(offsets)
  if bidirectional:
    num_buckets //= 2
    buckets = ops.where(offsets < 0, num_buckets, 0)
    distance = ops.abs(offsets)
  else:
    distance = ops.maximum(-offsets, 0)
  exact = num_buckets // 2
  log_ratio = (ops.log(ops.maximum(ops.cast(distance, "float32"), 1.0) / exact) /
               math.log(max_distance / exact))
  far = exact + ops.cast(log_ratio * (num_buckets - exact), "int32")
  far = ops.minimum(far, num_buckets - 1)
  return buckets + ops.where(distance < exact, distance, far)


@keras.saving.register_keras_serializable(package="t2t_lite")
class RelativePositionBias(keras.layers.Layer):
  """T5's bucketed relative position bias: float32 [B or 1, num_heads, T, S] attention logits.

  Args:
    num_heads: heads of the attention the bias is added to.
    num_buckets: buckets of offsets (half per direction when bidirectional).
    max_distance: offsets at or past it share their direction's last bucket.
    bidirectional: False for causal attention (keys at or before the query only).
    scale: the bias is scale * the learned table. Adam moves each table entry by about the
      learning rate a step whatever its gradient, so at a rate tuned for the other weights
      (~1e-3) a bias grows by ~1 in a thousand steps; a larger scale lets it grow to the
      margins that keep an attention sharp over many more keys than trained on.
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

  Call arguments:
    query_positions: int [B or 1, T].
    key_positions: int [B or 1, S].

  Example:

  >>> bias = RelativePositionBias(num_heads=4)
  >>> b = bias(ops.arange(5)[None], ops.arange(7)[None])   # [1, 4, 5, 7]
  """

  def __init__(self, num_heads, num_buckets=32, max_distance=128, bidirectional=True,
               scale=1.0, **kwargs):
    super().__init__(**kwargs)
    exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    if exact < 1 or max_distance <= exact:
      raise ValueError("RelativePositionBias: num_buckets=%d and max_distance=%d leave no "
                       "room for the log-spaced buckets (%s: max_distance must exceed %d)." %
                       (num_buckets, max_distance,
                        "bidirectional" if bidirectional else "causal", exact))
    self.num_heads = int(num_heads)
    self.num_buckets = int(num_buckets)
    self.max_distance = int(max_distance)
    self.bidirectional = bool(bidirectional)
    self.scale = float(scale)

  def build(self, query_positions_shape=None, key_positions_shape=None):
    # Zeros: a fresh model attends as it would without the bias.
    self.table = self.add_weight(name="table", shape=(self.num_buckets, self.num_heads),
                                 initializer="zeros", dtype="float32")
    self.built = True

  def call(self, query_positions, key_positions):
    offsets = (ops.expand_dims(ops.cast(key_positions, "int32"), 1) -
               ops.expand_dims(ops.cast(query_positions, "int32"), 2))       # [B, T, S]
    buckets = relative_buckets(offsets, self.num_buckets, self.max_distance,
                               self.bidirectional)
    table = ops.cast(self.table, "float32") * self.scale
    bias = ops.take(table, buckets, axis=0)                                  # [B, T, S, N]
    return ops.transpose(bias, (0, 3, 1, 2))

  def get_config(self):
    config = super().get_config()
    config.update({"num_heads": self.num_heads, "num_buckets": self.num_buckets,
                   "max_distance": self.max_distance, "bidirectional": self.bidirectional,
                   "scale": self.scale})
    return config


def example_lengths(mask, segmentation=None):
  """int32 [B, S]: the length of the example each position belongs to.

  mask: bool [B, S], True at real tokens; segmentation: optional int [B, S] of a packed row.
  """
  mask = ops.cast(mask, "int32")
  if segmentation is None:
    return ops.broadcast_to(ops.sum(mask, axis=1, keepdims=True), ops.shape(mask))
  same = ops.equal(ops.expand_dims(segmentation, 2), ops.expand_dims(segmentation, 1))
  return ops.sum(ops.cast(same, "int32") * ops.expand_dims(mask, 1), axis=2) * mask


def length_relative_positions(mask, positions=None, segmentation=None):
  """(from the start, from the end): int32 [B, S] each, each position's index within its
  example counted from its first token and from its last (n - 1 - i); 0 at padding."""
  mask = ops.cast(mask, "bool")
  if positions is None:
    positions = ops.broadcast_to(ops.arange(ops.shape(mask)[1], dtype="int32")[None],
                                 ops.shape(mask))
  positions = ops.cast(positions, "int32")
  from_end = example_lengths(mask, segmentation) - 1 - positions
  zero = ops.zeros_like(positions)
  return ops.where(mask, positions, zero), ops.where(mask, from_end, zero)


def random_positions(positions, mask, max_position, seed_generator, segmentation=None):
  """Randomized positions: each example's positions a sorted random subset of [0, max_position).

  Positions t = 0..n-1 of an example of n tokens become floor(u_t * (max_position - n)) + t,
  where u_0 <= u_1 <= ... are sorted uniform draws in [0, 1) (normalized partial sums of
  exponential draws, so no sort is needed): strictly increasing, hence distinct, and below
  max_position. Examples of max_position tokens or more keep 0..n-1.

  Args:
    positions: int [B, T], each token's index within its example (0..n-1).
    mask: bool [B, T], True at real tokens.
    max_position: int, the range drawn from.
    seed_generator: a keras.random.SeedGenerator.
    segmentation: optional int [B, T] of packed rows.

  Returns:
    int32 [B, T]; 0 at padding.
  """
  positions = ops.cast(positions, "int32")
  mask = ops.cast(mask, "bool")
  shape = ops.shape(positions)
  gaps = -ops.log1p(-keras.random.uniform(shape, seed=seed_generator, dtype="float32"))
  gaps = ops.where(mask, gaps, 0.0)
  if segmentation is None:
    same = ops.ones((shape[0], shape[1], shape[1]), "bool")
  else:
    same = ops.equal(ops.expand_dims(segmentation, 2), ops.expand_dims(segmentation, 1))
  index = ops.arange(shape[1], dtype="int32")
  before = ops.logical_and(same, ops.expand_dims(index, 1) >= ops.expand_dims(index, 0))
  # [B, T, T] @ [B, T]: the partial sum of the example's gaps up to each token, and its total.
  partial = ops.einsum("bts,bs->bt", ops.cast(before, "float32"), gaps)
  total = ops.einsum("bts,bs->bt", ops.cast(same, "float32"), gaps)
  extra = -ops.log1p(-keras.random.uniform(shape, seed=seed_generator, dtype="float32"))
  # One more draw per example (that of its first token) closes the interval, so u < 1.
  first_extra = ops.einsum("bts,bs->bt", ops.cast(
      ops.logical_and(same, ops.expand_dims(ops.equal(positions, 0), 1)), "float32"),
      ops.where(mask, extra, 0.0))
  uniform = partial / (total + first_extra)
  lengths = example_lengths(mask, segmentation)
  room = ops.maximum(max_position - lengths, 0)
  offset = ops.minimum(ops.cast(uniform * ops.cast(room, "float32"), "int32"), room)
  return ops.where(mask, offset + positions, 0)
