"""The input pipeline of a Problem: shards -> parsed examples -> batches.

`read_shards` reads a split's shards (its share of them for one `tf.distribute.InputContext`),
each through `integrity.read_checked` (a corrupt shard fails with a message naming it), and
parses the records in blocks; `batch_examples` drops long examples, shuffles and batches them.
`Problem.dataset` chains the two around the problem's own preprocessing.

Batching (from the model hparams; defaults from `t2t_lite.common_hparams.basic_params1`):

- Sequence problems (`batch_size_means_tokens = True`) batch by tokens: every example goes
  to the smallest length bucket that holds it (boundaries from `min_length_bucket` growing by
  `length_bucket_step`, up to `max_length`; tensor2tensor's scheme), is padded with 0 to the
  bucket's length, and a bucket of length L batches `max(1, batch_size // L)` examples, so no
  batch holds more than `batch_size` tokens (padding included) unless one example alone is
  longer than batch_size.
- `fixed_batch_shapes=True` (TPU): every sequence is padded to `max_length`, batches have
  `max(1, batch_size // max_length)` examples and `drop_remainder=True`; examples longer than
  `max_length` are dropped in every mode.
- Fixed-size problems (`batch_size_means_tokens = False`: images, classification) batch
  `batch_size` examples.
- Training drops examples longer than `max_length`, shuffles (`shuffle_buffer_size`) and
  repeats; evaluation drops them only with `eval_drop_long_sequences`, and its pipeline runs
  without tf.data's autotuning (deleting an autotuned iterator after a pass could wait ~5 s).
- `packed_length` > 0 (training only; resolved by `Problem.dataset`, see
  `t2t_lite.data.packing`): several examples a row, rows of packed_length tokens,
  `max(1, batch_size // packed_length)` rows a batch, drop_remainder=True; examples longer
  than max_length or packed_length are dropped; no bucketing.
- `deterministic_data=True`, or a `seed`, makes the order of examples reproducible (files read
  in a deterministic interleave, seeded shuffles); otherwise tf.data may reorder for speed.
- `batch_size` is per replica (tensor2tensor's meaning). With a `tf.distribute.InputContext`,
  each input pipeline reads its share of the shards (or of the examples, when there are
  fewer shards than pipelines) and yields per-replica batches, as
  `strategy.distribute_datasets_from_function` wants.
"""
import tensorflow as tf

from t2t_lite import common_hparams
from t2t_lite import errors
from t2t_lite.data import integrity
from t2t_lite.data import packing

SEQUENCE_FEATURES = ("inputs", "targets")
# Eval without dropping long sequences: buckets go up to this length; longer examples are
# batched alone, padded to their own length.
_EVAL_BUCKET_CAP = 1 << 16
# Records parsed at a time; also what one file gives in each turn of the interleave (the
# examples are shuffled after, in training). Smaller blocks cost more CPU per example.
BLOCK_SIZE = 256
# Files read at once.
MAX_CYCLE = 8


def bucket_boundaries(max_length, min_length=8, length_bucket_step=1.1):
  """tensor2tensor's length-bucket boundaries: min_length, then growing by the step.

  Each boundary is at least one more than the previous and the list stops below
  max_length, e.g. (64, 8, 1.1) -> [8, 9, 10, ..., 20, 22, 24, 26, 28, 30, 33, ..., 57, 62].
  """
  if length_bucket_step <= 1.0:
    raise errors.HParamsError("length_bucket_step must be > 1.0, got %r" % length_bucket_step)
  x = max(1, int(min_length))
  boundaries = []
  while x < max_length:
    boundaries.append(x)
    x = max(x + 1, int(x * length_bucket_step))
  return boundaries


def batching_scheme(batch_size, max_length, min_length_bucket=8, length_bucket_step=1.1,
                    drop_long_sequences=True):
  """The bucket lengths and per-bucket batch sizes of token batching.

  Returns:
    (lengths, batch_sizes): bucket i holds examples of length <= lengths[i] (and more than
    lengths[i-1]), padded to lengths[i], batched `batch_sizes[i] = max(1, batch_size //
    lengths[i])` at a time. The last length is max_length (or, when long sequences are
    kept, a large cap).
  """
  if max_length < min_length_bucket:
    min_length_bucket = max_length
  top = max_length if drop_long_sequences else max(max_length, _EVAL_BUCKET_CAP)
  lengths = bucket_boundaries(max_length, min_length_bucket, length_bucket_step)
  lengths.append(max_length)
  if top > max_length:
    x = max_length
    while x < top:
      x = max(x + 1, int(x * length_bucket_step))
      lengths.append(min(x, top))
  batch_sizes = [max(1, batch_size // n) for n in lengths]
  return lengths, batch_sizes


# -- reading -----------------------------------------------------------------------------------

def example_parser(reading_spec, transform=None):
  """The parser of blocks of serialized tf.train.Examples.

  Args:
    reading_spec: a Problem's `example_reading_spec()`: {name: tf.io feature}, or
      (features, decoders).
    transform: a function applied to every parsed block (a dict of batched features).

  Returns:
    (parse_block, decoders): parse_block maps a vector of records to a dict of features,
    int64 cast to int32, variable-length features as ragged rows (unbatched, tf.data holds
    them as ragged; inside dataset functions they are plain tensors); decoders as given (or
    None). No per-example function runs here: those are the pipeline's main cost.
  """
  decoders = None
  if isinstance(reading_spec, tuple):
    reading_spec, decoders = reading_spec
  batched_spec = {}
  for name, feature in reading_spec.items():
    if isinstance(feature, tf.io.VarLenFeature):
      batched_spec[name] = tf.io.RaggedFeature(feature.dtype, row_splits_dtype=tf.int32)
    else:
      batched_spec[name] = feature

  def parse_block(serialized):
    parsed = tf.io.parse_example(serialized, batched_spec)
    parsed = {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in parsed.items()}
    return transform(parsed) if transform else parsed

  return parse_block, decoders


def read_shards(files, parse_block, report, shuffle=False, seed=None, deterministic=True,
                input_context=None, repeat=False, order_seed=0):
  """The parsed examples of a split's shards (unbatched).

  Args:
    files: the shards.
    parse_block: from `example_parser`.
    report: an `integrity.ShardReport`: how a corrupt shard is named.
    shuffle: shuffle the order of the files (the examples are shuffled after).
    seed: the seed of that shuffle.
    deterministic: read the files in a deterministic interleave.
    input_context: a tf.distribute.InputContext: read this pipeline's share.
    repeat: repeat forever.
    order_seed: the seed every pipeline shares when they shard by example.
  """
  num_pipelines = input_context.num_input_pipelines if input_context else 1
  pipeline_id = input_context.input_pipeline_id if input_context else 0
  shard_examples = False
  if num_pipelines > 1:
    if len(files) >= num_pipelines:
      files = files[pipeline_id::num_pipelines]
    else:
      shard_examples = True
  ds = tf.data.Dataset.from_tensor_slices((files, integrity.file_sizes(files)))
  if shuffle and len(files) > 1:
    # Pipelines sharding by example must all see the same file order: give them one seed.
    file_seed = seed if seed is not None or not shard_examples else int(order_seed or 0)
    ds = ds.shuffle(len(files), seed=file_seed, reshuffle_each_iteration=True)
  if repeat and not shard_examples:
    ds = ds.repeat()
  cycle = min(len(files), MAX_CYCLE)

  @integrity.without_autograph
  def read(path, size):
    return integrity.read_checked(path, size, parse_block, BLOCK_SIZE, report)

  if cycle > 1:
    ds = ds.interleave(read, cycle_length=cycle, block_length=1,
                       num_parallel_calls=tf.data.AUTOTUNE,
                       # Sharding by example needs the same order in every pipeline.
                       deterministic=deterministic or shard_examples)
  else:
    ds = ds.interleave(read, cycle_length=1)
  ds = ds.unbatch()
  if shard_examples:
    ds = ds.shard(num_pipelines, pipeline_id)
    if repeat:
      ds = ds.repeat()
  return ds


def decode(ds, decoders, deterministic=True):
  """Applies `example_reading_spec`'s decoders ({name: function of the example}) per example."""
  if not decoders:
    return ds

  def apply(example):
    example = dict(example)
    for name, fn in decoders.items():
      example[name] = fn(example)
    return example

  return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


# -- batching ----------------------------------------------------------------------------------

def batch_examples(ds, hparams, max_length, batch_size_means_tokens=True, training=False,
                   shuffle=False, seed=None, deterministic=True, packed_length=0):
  """Drops long examples, shuffles and batches (see the module docstring for the rules).

  Args:
    ds: unbatched examples.
    hparams: the model hparams (batching hparams read through `common_hparams.get`).
    max_length: the problem's `max_length(hparams)`.
    batch_size_means_tokens: token batching (sequence problems) or `batch_size` examples.
    training: drop examples longer than max_length.
    shuffle: shuffle the examples (`shuffle_buffer_size`).
    seed: the shuffle's seed.
    deterministic: keep tf.data's order deterministic.
    packed_length: > 0: pack the examples into rows of this many tokens
      (`packing.packed_batches`) instead of bucketing them.

  Returns:
    The batched, prefetched dataset.
  """
  hp = lambda name: common_hparams.get(hparams, name)  # noqa: E731
  batch_size = int(hp("batch_size"))
  fixed = bool(hp("fixed_batch_shapes"))
  drop_long = training or fixed or bool(hp("eval_drop_long_sequences"))
  bucketing = batch_size_means_tokens and not fixed
  packed = int(packed_length or 0) > 0
  if drop_long and (batch_size_means_tokens or fixed) and not bucketing and not packed:
    ds = ds.filter(integrity.without_autograph(lambda ex: example_length(ex) <= max_length))
  if shuffle:
    buffer = int(hp("shuffle_buffer_size"))
    if buffer > 1:
      ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

  if packed:
    ds = packing.packed_batches(ds, packed_length, batch_size, max_length,
                                deterministic=deterministic)
  elif batch_size_means_tokens:
    if fixed:
      ds = pad_batch_fixed(ds, max(1, batch_size // max_length), max_length)
    else:
      lengths, sizes = batching_scheme(
          batch_size, max_length, int(hp("min_length_bucket")),
          float(hp("length_bucket_step")), drop_long_sequences=drop_long)
      # Dropping long examples happens in the bucketing (one function per example).
      ds = bucket_by_length(ds, lengths, sizes, overflow=not drop_long)
  elif fixed:
    ds = pad_batch_fixed(ds, batch_size, max_length)
  else:
    ds = pad_batch(ds, batch_size, None)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = deterministic
  options.experimental_optimization.map_parallelization = True
  if not training:
    # A pass over an eval split runs without tf.data's autotuning (AUTOTUNE then means one
    # call per core): with it, deleting the iterator after the pass waited ~5 s in 8 of 22
    # passes over algorithmic_reverse_binary40's dev split during evaluation on 2 cores (0 of
    # 18 without), and the passes themselves took as long (5.1-5.8 s against 4.8-6.1 s).
    # Every evaluation deletes its iterator; training keeps one for the whole run.
    options.autotune.enabled = False
  return ds.with_options(options)


def example_length(example):
  """The longest first dimension of the sequence features ("inputs", "targets")."""
  length = tf.constant(0, tf.int32)
  for name in SEQUENCE_FEATURES:
    if name in example and example[name].shape.rank and example[name].shape.rank >= 1:
      length = tf.maximum(length, tf.shape(example[name])[0])
  return length


def bucket_by_length(ds, lengths, batch_sizes, overflow=False):
  """Token batching: bucket i holds examples of length <= lengths[i], padded to lengths[i].

  Args:
    ds: unbatched examples.
    lengths: increasing bucket lengths.
    batch_sizes: examples per batch of each bucket.
    overflow: keep examples longer than lengths[-1]: batched one at a time, unpadded;
      otherwise they are dropped (inside the grouping: one dataset function per example).

  Returns:
    The batched dataset (batches of one bucket; the last, partial batch of each bucket is
    kept).
  """
  num = len(lengths)
  bounds = tf.constant(lengths, tf.int32)
  pad_to = tf.constant(list(lengths) + [-1, 0], tf.int32)
  # Window sizes: the buckets' batch sizes, 1 for overflow, a large window for dropped ones.
  sizes = tf.constant(list(batch_sizes) + [1, 1024], tf.int64)
  spec = ds.element_spec

  @integrity.without_autograph
  def key_fn(example):
    # The first bucket whose length holds the example; num when none does (overflow), or
    # num + 1 (dropped) when overflow is off.
    n = example_length(example)
    key = tf.reduce_sum(tf.cast(bounds < n, tf.int64))
    if not overflow:
      key = tf.where(key >= num, tf.constant(num + 1, tf.int64), key)
    return key

  @integrity.without_autograph
  def reduce_fn(key, window):
    batched = _pad_batch_to(window, sizes[key], pad_to[key], spec, drop_remainder=False)
    if overflow:
      return batched
    return batched.take(tf.where(key > num, tf.constant(0, tf.int64),
                                 tf.constant(-1, tf.int64)))

  return ds.group_by_window(key_fn, reduce_fn,
                            window_size_func=integrity.without_autograph(lambda key: sizes[key]))


def _is_ragged(spec):
  return isinstance(spec, tf.RaggedTensorSpec)


def _pad_batch_to(ds, batch_size, length, spec, drop_remainder):
  """Batches `ds`, padding the first dimension of sequence features to `length`.

  `length` is an int, a scalar tensor (-1: pad to the longest in the batch) or None (the
  longest). Other variable dimensions are padded to the longest in the batch. Works on
  ragged-held elements (batch, then pad the dense batch) and on dense ones (padded_batch).
  """
  if length is None:
    length = -1
  if not any(_is_ragged(s) for s in spec.values()):
    shapes = {}
    for name, s in spec.items():
      dims = []
      for i, d in enumerate(s.shape.as_list()):
        if d is not None:
          dims.append(tf.constant(d, tf.int64))
        elif i == 0 and name in SEQUENCE_FEATURES:
          dims.append(tf.cast(length, tf.int64))
        else:
          dims.append(tf.constant(-1, tf.int64))
      shapes[name] = tf.stack(dims) if dims else tf.constant([], tf.int64)
    return ds.padded_batch(batch_size, padded_shapes=shapes, drop_remainder=drop_remainder)

  static_length = length if isinstance(length, int) and length > 0 else None
  static_batch = batch_size if isinstance(batch_size, int) and drop_remainder else None

  @integrity.without_autograph
  def densify(batch):
    out = {}
    for name, value in batch.items():
      if isinstance(value, tf.RaggedTensor):
        value = value.to_tensor()
        if name in SEQUENCE_FEATURES:
          pad = tf.maximum(tf.cast(length, tf.int32) - tf.shape(value)[1], 0)
          paddings = [[0, 0], [0, pad]] + [[0, 0]] * (value.shape.rank - 2)
          value = tf.pad(value, paddings)
          value.set_shape([static_batch, static_length] + value.shape.as_list()[2:])
      out[name] = value
    return out

  return ds.batch(batch_size, drop_remainder=drop_remainder).map(densify)


def pad_batch(ds, batch_size, length, drop_remainder=False):
  """Batches `batch_size` examples, sequence features padded to `length` (None: longest)."""
  return _pad_batch_to(ds, batch_size, length, ds.element_spec, drop_remainder)


def pad_batch_fixed(ds, batch_size, length):
  """Pads every sequence feature to `length` and batches with drop_remainder=True.

  The caller drops longer examples first.
  """
  return _pad_batch_to(ds, batch_size, length, ds.element_spec, drop_remainder=True)
