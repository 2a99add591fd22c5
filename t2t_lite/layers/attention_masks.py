"""The masks of the attention layers, and the checks of their shapes.

Every mask here is boolean, True where a query may attend to a key; the layers combine theirs
into one [B or 1, T, S] tensor with `and_masks` before the attention math
(`t2t_lite.layers.attention_base`). The shape checks raise ValueErrors that name the argument
and both shapes, at trace time (static shapes only).
"""
from keras import ops


def static_shape(x):
  """The static shape of a tensor (or of anything with `.shape`), as a tuple."""
  return tuple(getattr(x, "shape", ()))


def format_shape(shape):
  return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


class ShapeOnly:
  """Lets `check_input` validate a shape tuple (a `build` argument) as if it were a tensor."""

  def __init__(self, shape):
    self.shape = tuple(shape)


def check_input(layer_name, name, x, hidden_size=None):
  """Raises ValueError unless `x` is [batch, length, hidden] (with `hidden_size` if given)."""
  shape = static_shape(x)
  if len(shape) != 3:
    raise ValueError("%s: `%s` must have rank 3, shape (batch, length, hidden); received "
                     "shape %s." % (layer_name, name, format_shape(shape)))
  if hidden_size is not None and shape[-1] is not None and shape[-1] != hidden_size:
    raise ValueError("%s: `%s` has hidden size %d but the layer was built for %d (shape %s)." %
                     (layer_name, name, shape[-1], hidden_size, format_shape(shape)))


def check_mask_shape(name, mask, expected, layer_name):
  """Raises ValueError unless `mask`'s static dims agree with `expected` (or are 1)."""
  shape = static_shape(mask)
  if len(shape) != len(expected):
    raise ValueError(
        "%s: `%s` must have rank %d, shape %s (or broadcastable); received %s with shape %s." %
        (layer_name, name, len(expected), format_shape(expected), name, format_shape(shape)))
  for got, want in zip(shape, expected):
    if got is not None and want is not None and got != want and got != 1:
      raise ValueError(
          "%s: `%s` has shape %s, which does not match the expected shape %s." %
          (layer_name, name, format_shape(shape), format_shape(expected)))


def and_masks(a, b):
  """a AND b, where None means "no mask" (everything allowed)."""
  if a is None:
    return b
  if b is None:
    return a
  return ops.logical_and(a, b)


def padding_masks(query_mask, key_mask):
  """[B, T] and [B, S] padding masks (either may be None) -> a boolean [B, T, S] or None."""
  combined = None
  if query_mask is not None:
    combined = ops.expand_dims(ops.cast(query_mask, "bool"), -1)
  if key_mask is not None:
    combined = and_masks(combined, ops.expand_dims(ops.cast(key_mask, "bool"), 1))
  return combined


def same_segment_mask(query_segments, key_segments):
  """[B, T] and [B, S] segment ids (packed rows) -> bool [B, T, S]: equal ids may attend.

  Padding (segment 0) matches padding only; the padding masks hide it anyway.
  """
  return ops.equal(ops.expand_dims(query_segments, -1), ops.expand_dims(key_segments, 1))


def causal_mask(query_positions, key_positions):
  """[1, T, S]: query i may attend to key j when key_positions[j] <= query_positions[i]."""
  causal = ops.expand_dims(key_positions, 0) <= ops.expand_dims(query_positions, 1)
  return ops.expand_dims(causal, 0)


def written_positions_mask(key_positions, end):
  """[1, 1, S]: the cache positions below `end` (the ones written so far)."""
  return ops.expand_dims(ops.expand_dims(key_positions < end, 0), 0)
