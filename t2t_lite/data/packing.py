"""Packed training batches: several short examples in one row (tensor2tensor's `packed_length`).

A row of `packed_length` tokens holds the inputs of several examples one after the other, and
their targets likewise; each token also carries the example it belongs to and its index in
that example:

    targets               [ 7  8  1  5  1  9  4  4  1  0  0 ]
    targets_segmentation  [ 1  1  1  2  2  3  3  3  3  0  0 ]   1, 2, ... in a row; 0 at padding
    targets_position      [ 0  1  2  0  1  0  1  2  3  0  0 ]   the index within the example

(and `inputs`, `inputs_segmentation`, `inputs_position` in the same way: example k of a row is
segment k on both sides). A model that reads these features (the transformer:
`T2TModel.reads_packed_features`) keeps attention within each example and restarts positions;
the loss ignores padding (id 0) as for any batch, so a packed batch's loss is the
token-weighted loss of its examples. Short sentences then fill a batch with real tokens instead
of padding, in batches of one fixed shape [rows, packed_length] (no retracing, suits XLA).

The hparam `packed_length` (basic_params1) chooses: -1 lets the problem decide
(`Problem.packed_length(model_hparams)`: 0 for most problems, `max_length` for text-to-text and
language-model problems), 0 turns packing off, N > 0 packs rows of N tokens. Only training
batches are packed; evaluation and prediction read one example a row (decoding outside XLA
then pairs its encoder inputs in packed rows itself: `decoding.decoder.encode_in_pairs`).

How: the examples (already shuffled) are taken `CHUNK_EXAMPLES` at a time, and each chunk is
packed first-fit (an example goes into the first row of the chunk with room for both its
inputs and its targets) by one dataset function, run on several chunks in parallel with a
deterministic order. Every stage is an ordinary tf.data transformation, so the training
iterator is saved in checkpoints and a resumed run reads the rows it would have read. An
example is never split across rows, and examples longer than the row are dropped, not
truncated (as training drops examples longer than max_length: a cut target would teach the
model to stop early). The last, partly filled rows of each chunk are kept; features other than
inputs and targets are not carried into packed rows.
"""
import tensorflow as tf

from t2t_lite import common_hparams
from t2t_lite import errors
from t2t_lite.data import integrity

SEQUENCE_FEATURES = ("inputs", "targets")
SEGMENTATION = "_segmentation"
POSITION = "_position"
# Examples packed together by one call of the packing function. Larger chunks fill rows a
# little better (one partly filled row per chunk) and cost more per example (the first-fit
# search is over the chunk's rows).
CHUNK_EXAMPLES = 256


def resolve_packed_length(hparams, problem_default):
  """The row length training batches are packed to; 0 means no packing.

  Args:
    hparams: the model hparams (`packed_length` read through `common_hparams.get`).
    problem_default: the problem's `packed_length(hparams)`, used when the hparam is -1.

  Raises:
    HParamsError: packed_length is below -1.
  """
  value = int(common_hparams.get(hparams, "packed_length"))
  if value < -1:
    raise errors.HParamsError("packed_length must be -1 (the problem's default), 0 (off) or "
                              "a row length > 0, got %d" % value)
  if value == -1:
    value = int(problem_default or 0)
  return max(0, value)


def packed_feature_names(features=SEQUENCE_FEATURES):
  """The names of a packed row's features, e.g. targets, targets_segmentation, ..."""
  return [f + suffix for f in features for suffix in ("", SEGMENTATION, POSITION)]


def is_packing_feature(name):
  """True for the `*_segmentation` / `*_position` features packed rows add."""
  return any(name == f + s for f in SEQUENCE_FEATURES for s in (SEGMENTATION, POSITION))


def pack_dataset(ds, packed_length, max_length=None, chunk_examples=CHUNK_EXAMPLES,
                 deterministic=True):
  """Packs unbatched examples into rows of `packed_length` tokens (unbatched rows).

  Args:
    ds: unbatched examples with 1-D int "targets" and, unless a language model, "inputs".
    packed_length: the length of every row.
    max_length: also drop examples longer than this (None: only those longer than a row).
    chunk_examples: how many examples are packed together.
    deterministic: keep the order of the rows reproducible.

  Returns:
    A dataset of rows: for each of "inputs" (when the examples have it) and "targets", the
    ids, `_segmentation` and `_position`, each int32 [packed_length].
  """
  length = int(packed_length)
  if length <= 0:
    raise ValueError("packed_length must be > 0, got %r" % packed_length)
  limit = length if not max_length else min(length, int(max_length))
  features = tuple(f for f in SEQUENCE_FEATURES if f in ds.element_spec)
  if "targets" not in features:
    raise ValueError("packing needs a 'targets' feature; the examples have %s"
                     % sorted(ds.element_spec))
  as_int32 = integrity.without_autograph(lambda ex: {f: tf.cast(ex[f], tf.int32) for f in features})
  ds = ds.map(as_int32, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  ds = ds.ragged_batch(int(chunk_examples))
  ds = ds.map(integrity.without_autograph(lambda chunk: pack_chunk(chunk, length, limit)),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  return ds.unbatch()


def pack_chunk(chunk, packed_length, max_length=None):
  """Packs a chunk of examples first-fit into rows (the body of `pack_dataset`).

  Args:
    chunk: {feature: int RaggedTensor [N, None]}, "targets" and possibly "inputs".
    packed_length: the row length (a Python int).
    max_length: examples longer than this (or than a row) are dropped.

  Returns:
    {name: int32 [rows, packed_length]} for `packed_feature_names` of the chunk's features.
  """
  length = int(packed_length)
  limit = length if not max_length else min(length, int(max_length))
  features = [f for f in SEQUENCE_FEATURES if f in chunk]
  chunk = {f: _ragged(chunk[f]) for f in features}
  sizes = tf.stack([tf.cast(chunk[f].row_lengths(), tf.int32) for f in features], 1)  # [N, F]
  keep = tf.reduce_all(sizes <= limit, axis=1)
  chunk = {f: tf.ragged.boolean_mask(chunk[f], keep) for f in features}
  sizes = tf.boolean_mask(sizes, keep)
  row, offset, segment = _first_fit(sizes, length)
  rows = tf.reduce_max(tf.concat([row + 1, [0]], 0))  # an empty chunk has no rows
  out = {}
  for i, f in enumerate(features):
    ids = chunk[f]
    example = ids.value_rowids()
    position = tf.range(tf.size(ids.values, out_type=tf.int64)) - tf.gather(ids.row_starts(),
                                                                           example)
    position = tf.cast(position, tf.int32)
    column = tf.gather(offset[:, i], example) + position
    index = tf.stack([tf.gather(row, example), column], 1)
    shape = tf.stack([rows, length])
    out[f] = tf.scatter_nd(index, ids.values, shape)
    out[f + SEGMENTATION] = tf.scatter_nd(index, tf.gather(segment, example), shape)
    out[f + POSITION] = tf.scatter_nd(index, position, shape)
  for value in out.values():
    value.set_shape([None, length])
  return out


def _ragged(value):
  if isinstance(value, tf.RaggedTensor):
    return value
  return tf.RaggedTensor.from_tensor(value)  # a dense chunk: equal lengths, nothing padded


def _first_fit(sizes, length):
  """The row, start offsets and segment number of each example, placed first-fit.

  Args:
    sizes: int32 [N, F], the lengths of each example's features (each <= length).
    length: the row length.

  Returns:
    (row [N], offset [N, F], segment [N]): example i goes to row[i] at offset[i, f] in
    feature f, as that row's segment[i]-th example (1-based).
  """
  n = tf.shape(sizes)[0]
  num_features = sizes.shape[1]

  def body(i, fill, count, row, offset, segment):
    size = sizes[i]
    room = tf.reduce_all(fill + size[None] <= length, axis=1)  # [N]: rows with room
    # Row n - 1 or an earlier one is still empty, so some row always has room.
    r = tf.argmax(tf.cast(room, tf.int32), output_type=tf.int32)
    at = [[r]]
    offset = tf.tensor_scatter_nd_update(offset, [[i]], fill[r][None])
    fill = tf.tensor_scatter_nd_add(fill, at, size[None])
    count = tf.tensor_scatter_nd_add(count, at, [1])
    row = tf.tensor_scatter_nd_update(row, [[i]], [r])
    segment = tf.tensor_scatter_nd_update(segment, [[i]], count[r][None])
    return i + 1, fill, count, row, offset, segment

  zeros = tf.zeros([n], tf.int32)
  state = (tf.constant(0), tf.zeros([n, num_features], tf.int32), zeros, zeros,
           tf.zeros([n, num_features], tf.int32), zeros)
  _, _, _, row, offset, segment = tf.while_loop(lambda i, *_: i < n, body, state)
  return row, offset, segment


def packed_batches(ds, packed_length, batch_size, max_length=None, deterministic=True):
  """Packed training batches: rows of `pack_dataset`, `max(1, batch_size // packed_length)`
  a batch (batch_size counts tokens), drop_remainder=True, so every batch has the shape
  [rows, packed_length]."""
  rows = max(1, int(batch_size) // int(packed_length))
  ds = pack_dataset(ds, packed_length, max_length, deterministic=deterministic)
  return ds.batch(rows, drop_remainder=True)
