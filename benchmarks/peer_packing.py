"""A prototype of packed training batches, to measure what packing does to learning per step.

Packing (tensor2tensor's `packed` problems) concatenates several examples into one row of
`row_length` tokens, so a batch holds examples of every length with almost no padding; each
position carries the example it belongs to (`inputs_segmentation` / `targets_segmentation`:
1, 2, ... in a row, 0 at padding) and its index within that example (`inputs_position` /
`targets_position`). The transformer keeps the examples of a row apart with these features.

This is a measuring tool, not the input pipeline: `benchmarks.peer_steps --pack_length=N`
trains on it, packed next-fit with tf.data ops (`pack_dataset`, --pack_open_rows=1) or
first-fit into a few open rows in Python (`pack_examples`, fuller rows).
"""
import numpy as np

FEATURES = ("inputs", "targets")


def pack_examples(examples, row_length, open_rows=4):
  """Yields packed rows (dicts of int32 [row_length] arrays) from an iterable of examples.

  Each example goes into the first open row with room for both its inputs and its targets;
  when none has room, the fullest open row is emitted. Examples longer than row_length are
  dropped.

  Args:
    examples: dicts with 1-D int "inputs" and "targets".
    row_length: the length of every row.
    open_rows: how many rows are filled at once.
  """
  rows = []

  def new_row():
    return {"length": {f: 0 for f in FEATURES}, "parts": {f: [] for f in FEATURES}}

  def emit(row):
    out = {}
    for f in FEATURES:
      ids = np.zeros(row_length, np.int32)
      segmentation = np.zeros(row_length, np.int32)
      position = np.zeros(row_length, np.int32)
      start = 0
      for segment, part in enumerate(row["parts"][f], 1):
        n = len(part)
        ids[start:start + n] = part
        segmentation[start:start + n] = segment
        position[start:start + n] = np.arange(n)
        start += n
      out[f] = ids
      out[f + "_segmentation"] = segmentation
      out[f + "_position"] = position
    return out

  for example in examples:
    lengths = {f: len(example[f]) for f in FEATURES}
    if max(lengths.values()) > row_length:
      continue
    target = None
    for row in rows:
      if all(row["length"][f] + lengths[f] <= row_length for f in FEATURES):
        target = row
        break
    if target is None:
      if len(rows) >= open_rows:
        fullest = max(rows, key=lambda r: sum(r["length"].values()))
        rows.remove(fullest)
        yield emit(fullest)
      target = new_row()
      rows.append(target)
    for f in FEATURES:
      target["parts"][f].append(np.asarray(example[f], np.int32))
      target["length"][f] += lengths[f]


def pack_dataset(examples_ds, row_length, open_rows=1):
  """First-fit packing into `open_rows` rows, in tf.data ops only (a `scan`), so that the
  iterator can be checkpointed.

  Each example goes into the first of the open rows with room for both its inputs and its
  targets; when none has room, the fullest row is emitted and the example starts a new row in
  its place. With open_rows=1 this is next-fit (`pack_examples` with open_rows=1, exactly).
  Examples longer than row_length are dropped; the unfinished rows of a finite dataset are
  lost.

  Args:
    examples_ds: unbatched examples with 1-D int "inputs" and "targets".
    row_length: the length of every row.
    open_rows: how many rows are filled at once (fuller rows, a little more work per example).

  Returns:
    A dataset of rows: "inputs", "targets" and their "_segmentation" and "_position", each
    int32 [row_length].
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  length = tf.constant(row_length, tf.int32)
  k_rows = int(open_rows)
  row_names = [f + suffix for f in FEATURES for suffix in ("", "_segmentation", "_position")]

  def fits(example):
    return tf.logical_and(tf.size(example["inputs"]) <= length,
                          tf.size(example["targets"]) <= length)

  state = {name: tf.zeros([k_rows, row_length], tf.int32) for name in row_names}
  state.update({f + "_length": tf.zeros([k_rows], tf.int32) for f in FEATURES})
  state["segments"] = tf.zeros([k_rows], tf.int32)

  def step(state, example):
    sizes = {f: tf.size(example[f]) for f in FEATURES}
    room = tf.reduce_all(tf.stack([state[f + "_length"] + sizes[f] <= length
                                   for f in FEATURES]), 0)
    any_room = tf.reduce_any(room)
    fill = tf.add_n([state[f + "_length"] for f in FEATURES])
    k = tf.where(any_room, tf.argmax(tf.cast(room, tf.int32), output_type=tf.int32),
                 tf.argmax(fill, output_type=tf.int32))
    emit = tf.logical_not(any_room)  # an empty row always has room: row k is full here
    emitted = {name: state[name][k] for name in row_names}
    select = tf.one_hot(k, k_rows, dtype=tf.int32)          # [K]: the row written to
    keep = 1 - select * tf.cast(emit, tf.int32)              # [K]: 0 on an emitted row
    segments = state["segments"] * keep + select
    new = {"segments": segments}
    for f in FEATURES:
      ids = tf.cast(example[f], tf.int32)
      n = sizes[f]
      lengths = state[f + "_length"] * keep
      start = lengths[k]
      padding = [[start, length - start - n]]
      # Row k's free part is zeros, so adding a zero-padded copy writes into it.
      for suffix, values in (("", ids), ("_segmentation", tf.fill([n], segments[k])),
                             ("_position", tf.range(n))):
        new[f + suffix] = (state[f + suffix] * keep[:, None] +
                           select[:, None] * tf.pad(values, padding)[None])
      new[f + "_length"] = lengths + select * n
    return new, (emit, emitted)

  def emitted(emit, row):
    del row
    return emit

  def row_only(emit, row):
    del emit
    return row

  ds = examples_ds.filter(fits).scan(state, step)
  return ds.filter(emitted).map(row_only)


def packed_dataset(examples_ds, row_length, rows_per_batch, open_rows=1):
  """tf.data of packed batches ([rows_per_batch, row_length] features) from unbatched
  examples (a repeating, shuffled tf.data.Dataset): `pack_dataset` (tf.data ops) with
  open_rows=1, `pack_examples` (Python, first-fit into open_rows rows) otherwise."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if open_rows <= 0:  # tf.data ops, -open_rows rows (checkpointable)
    ds = pack_dataset(examples_ds, row_length, max(1, -open_rows))
    return ds.batch(rows_per_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  if open_rows == 1:
    ds = pack_dataset(examples_ds, row_length)
    return ds.batch(rows_per_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  names = []
  for f in FEATURES:
    names += [f, f + "_segmentation", f + "_position"]
  signature = {n: tf.TensorSpec([row_length], tf.int32) for n in names}

  def generate():
    return pack_examples(examples_ds.as_numpy_iterator(), row_length, open_rows)

  ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
  return ds.batch(rows_per_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
