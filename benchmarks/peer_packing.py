"""A prototype of packed training batches, to measure what packing does to learning per step.

Packing (tensor2tensor's `packed` problems) concatenates several examples into one row of
`row_length` tokens, so a batch holds examples of every length with almost no padding; each
position carries the example it belongs to (`inputs_segmentation` / `targets_segmentation`:
1, 2, ... in a row, 0 at padding) and its index within that example (`inputs_position` /
`targets_position`). The transformer keeps the examples of a row apart with these features.

This is a measuring tool (a Python generator inside tf.data, first-fit into a few open rows),
not the input pipeline: `benchmarks.peer_steps --pack_length=N` trains on it.
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


def packed_dataset(examples_ds, row_length, rows_per_batch):
  """tf.data of packed batches ([rows_per_batch, row_length] features) from unbatched
  examples (a repeating, shuffled tf.data.Dataset)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  names = []
  for f in FEATURES:
    names += [f, f + "_segmentation", f + "_position"]
  signature = {n: tf.TensorSpec([row_length], tf.int32) for n in names}

  def generate():
    return pack_examples(examples_ds.as_numpy_iterator(), row_length)

  ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
  return ds.batch(rows_per_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
