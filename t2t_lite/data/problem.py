"""`Problem`: a task's data, how it is generated, read, preprocessed and batched.

A Problem keeps tensor2tensor's hooks; a subclass fills in the ones it needs:

- `generate_data(data_dir, tmp_dir, task_id=-1)`: write the TFRecord shards (see
  `t2t_lite.data.generator_utils`); `dataset_splits()` says which splits and how many shards.
- `hparams(defaults, model_hparams)`: set `defaults.vocab_size` / `defaults.modality`
  (dicts keyed by "inputs" and "targets").
- `feature_encoders(data_dir)`: {"inputs": encoder, "targets": encoder}.
- `example_reading_spec()`: the `tf.io` features of a stored example.
- `preprocess_example(example, mode, hparams)`: one parsed example -> one example.
- `eval_metrics()`, `max_length(model_hparams)`.

and gets, for free:

- `get_hparams(model_hparams)`: the problem hparams the model is built with.
- `dataset(mode, data_dir, hparams)`: a batched `tf.data.Dataset` of feature dicts.
- `data_exists(data_dir)`, `data_files(data_dir, split)`, `check_shards(data_dir)`,
  `reading_errors(data_dir)`.

Batching (from the model hparams; see `t2t_lite.models.common_hparams.basic_params1`):

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
  repeats; evaluation drops them only with `eval_drop_long_sequences`.
- `deterministic_data=True`, or a `seed`, makes the order of examples reproducible (files read
  in a deterministic interleave, seeded shuffles); otherwise tf.data may reorder for speed.
- `batch_size` is per replica (tensor2tensor's meaning). With a `tf.distribute.InputContext`,
  each input pipeline reads its share of the shards (or of the examples, when there are
  fewer shards than pipelines) and yields per-replica batches, as
  `strategy.distribute_datasets_from_function` wants.

Corrupt data: a truncated or corrupt shard makes tf.data raise `tf.errors.DataLossError` while
iterating, inside the trainer's `tf.function`, where the file is not known. Two tools turn that
into a `CorruptDataError` naming the file:

- `problem.check_shards(data_dir, splits)` reads every record of every shard (CRC-checked) and
  raises `CorruptDataError(path)` on the first bad one; cheap for the data sizes of
  tensor2tensor problems, and what the trainer calls before training.
- `with problem.reading_errors(data_dir):` around a loop that iterates a dataset: a
  `DataLossError` (or the `InvalidArgumentError` a garbled record gives) raised inside is
  re-raised as `CorruptDataError` naming the bad shard (found by checking the shards then).
"""
import contextlib

import tensorflow as tf

from t2t_lite import errors
from t2t_lite import registry
from t2t_lite.data import generator_utils
from t2t_lite.data import text_encoder
from t2t_lite.hparams import HParams


class ModeKeys:
  """The modes a dataset is read for (tensor2tensor's / tf.estimator's names)."""
  TRAIN = "train"
  EVAL = "eval"
  PREDICT = "infer"


# The batching hparams Problem.dataset reads, with the defaults used when they are missing.
BATCHING_DEFAULTS = dict(
    batch_size=4096,
    max_length=256,
    min_length_bucket=8,
    length_bucket_step=1.1,
    eval_drop_long_sequences=False,
    fixed_batch_shapes=False,
    shuffle_buffer_size=1024,
    deterministic_data=False,
)

SEQUENCE_FEATURES = ("inputs", "targets")
# Eval without dropping long sequences: buckets go up to this length; longer examples are
# batched alone, padded to their own length.
_EVAL_BUCKET_CAP = 1 << 16


def _hp(hparams, name):
  """A batching hparam, with its default when missing (so a partial HParams works)."""
  value = getattr(hparams, name, None) if hparams is not None else None
  return BATCHING_DEFAULTS[name] if value is None else value


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


class Problem:
  """Base class of all problems (see the module docstring for the hooks).

  Args:
    was_reversed: inputs and targets swapped (the `NAME_rev` problem).
    was_copy: targets replaced by the inputs (the `NAME_copy` problem).

  Class attributes a subclass may set:
    batch_size_means_tokens: True for sequence problems (token batching); False for
      fixed-size problems (images, classification), which batch `batch_size` examples.
    random_seed: the base seed of `generate_data` (t2t-datagen's --random_seed sets it).

  Example:

      @registry.register_problem
      class MyCopy(Problem):
        def generate_data(self, data_dir, tmp_dir, task_id=-1):
          ...
      p = registry.problem("my_copy")
      ds = p.dataset(ModeKeys.TRAIN, "/data", hparams)
  """

  batch_size_means_tokens = True
  random_seed = 0

  def __init__(self, was_reversed=False, was_copy=False):
    self._was_reversed = bool(was_reversed)
    self._was_copy = bool(was_copy)
    self._encoders = None
    self._data_dir = None

  # -- names -------------------------------------------------------------------------

  @property
  def base_name(self):
    """The registered name without the _rev / _copy modifiers."""
    return registered_name(type(self))

  @property
  def name(self):
    """The name with its modifiers, e.g. `algorithmic_reverse_binary40_rev`."""
    name = self.base_name
    if self._was_reversed:
      name += "_rev"
    if self._was_copy:
      name += "_copy"
    return name

  def dataset_filename(self):
    """The prefix of the data files (shared by NAME, NAME_rev and NAME_copy)."""
    return self.base_name

  @property
  def was_reversed(self):
    return self._was_reversed

  @property
  def was_copy(self):
    return self._was_copy

  def __repr__(self):
    return "<%s %s>" % (type(self).__name__, self.name)

  # -- hooks a subclass implements ---------------------------------------------------

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    """Writes the problem's shards into data_dir (tmp_dir: downloads, scratch)."""
    raise NotImplementedError("%s does not generate data" % type(self).__name__)

  def hparams(self, defaults, model_hparams):
    """Sets vocab sizes and modalities on `defaults` (the problem hparams).

    The default reads the vocab sizes from `feature_encoders` and uses symbol modalities.
    """
    del model_hparams
    encoders = self.feature_encoders(self._data_dir)
    if self.has_inputs and "inputs" in encoders:
      defaults.vocab_size["inputs"] = encoders["inputs"].vocab_size
      defaults.modality["inputs"] = "symbol"
    defaults.vocab_size["targets"] = encoders["targets"].vocab_size
    defaults.modality["targets"] = "symbol"

  def feature_encoders(self, data_dir):
    """{"inputs": encoder, "targets": encoder}; default: space-separated integers."""
    del data_dir
    enc = text_encoder.TextEncoder()
    return {"inputs": enc, "targets": enc}

  def example_reading_spec(self):
    """The stored features: a dict of name -> tf.io feature (VarLenFeature/FixedLenFeature).

    May also return (features, decoders) where decoders is a dict of name -> function of
    the parsed example, applied per example (tensor2tensor's shape).
    """
    spec = {"targets": tf.io.VarLenFeature(tf.int64)}
    if self.has_inputs:
      spec["inputs"] = tf.io.VarLenFeature(tf.int64)
    return spec

  def preprocess_example(self, example, mode, hparams):
    """One parsed example (dict of tensors) -> one example. Default: unchanged."""
    del mode, hparams
    return example

  def eval_metrics(self):
    """The names of the metrics the trainer computes in evaluation."""
    return ["accuracy", "accuracy_top5", "accuracy_per_sequence", "neg_log_perplexity"]

  def dataset_splits(self):
    """The splits generate_data writes: a list of {"split": name, "shards": count}."""
    return [{"split": "train", "shards": 10}, {"split": "dev", "shards": 1}]

  def max_length(self, model_hparams):
    """Training examples longer than this are dropped (hparams.max_length or batch_size)."""
    return int(_hp(model_hparams, "max_length") or _hp(model_hparams, "batch_size"))

  @property
  def has_inputs(self):
    """False for language models ({"targets"} only)."""
    return True

  def dataset_split(self, mode):
    """The split read for a mode: train for TRAIN, dev for EVAL and PREDICT."""
    return "train" if mode == ModeKeys.TRAIN else "dev"

  # -- problem hparams ---------------------------------------------------------------

  def get_hparams(self, model_hparams=None, data_dir=None):
    """The problem hparams: vocab_size and modality dicts, has_inputs, was_reversed, ...

    Args:
      model_hparams: the model's HParams (may carry `data_dir`, for encoders built from data).
      data_dir: where the vocabularies are; defaults to model_hparams.data_dir or the
        data_dir this problem last read.
    """
    data_dir = (data_dir or getattr(model_hparams, "data_dir", None) or self._data_dir)
    if data_dir:
      self._data_dir = data_dir
    hp = HParams(
        vocab_size={},
        modality={},
        has_inputs=self.has_inputs,
        was_reversed=self._was_reversed,
        was_copy=self._was_copy,
        batch_size_means_tokens=self.batch_size_means_tokens,
        loss_multiplier=1.0,
        stop_at_eos=True,
    )
    self.hparams(hp, model_hparams)
    vocab = dict(hp.vocab_size)
    modality = dict(hp.modality)
    if self._was_reversed:
      vocab = _swapped(vocab)
      modality = _swapped(modality)
    if self._was_copy and "inputs" in vocab:
      vocab["targets"] = vocab["inputs"]
      modality["targets"] = modality.get("inputs")
    hp.vocab_size = vocab
    hp.modality = modality
    return hp

  # -- files -------------------------------------------------------------------------

  def data_filepattern(self, data_dir, split):
    return generator_utils.shard_pattern(data_dir, self.dataset_filename(), split)

  def datagen_command(self, data_dir):
    return "t2t-datagen --problem=%s --data_dir=%s" % (self.dataset_filename(), data_dir)

  def data_files(self, data_dir, split):
    """The complete shards of a split.

    Raises:
      DataNotFoundError: none there, or fewer than the count their names announce.
    """
    if not data_dir:
      raise errors.DataNotFoundError(
          "problem %s needs --data_dir (where its data is, or goes). Create the data with: "
          "t2t-datagen --problem=%s --data_dir=DIR" % (self.name, self.dataset_filename()))
    paths, count = generator_utils.find_shards(data_dir, self.dataset_filename(), split)
    pattern = self.data_filepattern(data_dir, split)
    if not paths:
      raise errors.DataNotFoundError(
          "no %s data for problem %s in data_dir %s (looked for %s). Create it with: %s"
          % (split, self.name, data_dir, pattern, self.datagen_command(data_dir)))
    if len(paths) != count:
      raise errors.DataNotFoundError(
          "incomplete %s data for problem %s in data_dir %s: %d of the %d shards matching %s "
          "are there (an interrupted generation?). Complete it with: %s"
          % (split, self.name, data_dir, len(paths), count, pattern,
             self.datagen_command(data_dir)))
    return paths

  def data_exists(self, data_dir, splits=None):
    """True when every split (default: all of dataset_splits) has all its shards."""
    if not data_dir:
      return False
    splits = splits or [s["split"] for s in self.dataset_splits()]
    for split in splits:
      paths, count = generator_utils.find_shards(data_dir, self.dataset_filename(), split)
      if not paths or len(paths) != count:
        return False
    return True

  def check_shards(self, data_dir, splits=None):
    """Reads every record of every shard; returns {split: number of examples}.

    Raises:
      DataNotFoundError: a split is missing.
      CorruptDataError: a shard is truncated or corrupt (the message names it).
    """
    splits = splits or [s["split"] for s in self.dataset_splits()]
    counts = {}
    for split in splits:
      counts[split] = sum(generator_utils.check_shard(p) for p in self.data_files(data_dir, split))
    return counts

  def find_unparsable_shard(self, data_dir, splits=None):
    """The first shard holding a record that does not parse as this problem's example, or
    None (check_shards finds checksum errors; this finds well-framed garbage)."""
    spec = self.example_reading_spec()
    if isinstance(spec, tuple):
      spec = spec[0]
    for split in splits or [s["split"] for s in self.dataset_splits()]:
      try:
        paths = self.data_files(data_dir, split)
      except errors.T2TUserError:
        continue
      for path in paths:
        try:
          for batch in tf.data.TFRecordDataset(path).batch(256):
            tf.io.parse_example(batch, spec)
        except (tf.errors.OpError, UnicodeDecodeError):
          return path
    return None

  @contextlib.contextmanager
  def reading_errors(self, data_dir, splits=None):
    """Turns tf.data's DataLossError raised inside into CorruptDataError naming the shard."""
    try:
      yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, UnicodeDecodeError) as e:
      # A record that passes its checksum but does not parse can surface as a
      # UnicodeDecodeError: TensorFlow fails to decode its own error message quoting the bytes.
      if isinstance(e, tf.errors.InvalidArgumentError) and not _looks_like_parse_error(e):
        raise
      if isinstance(e, UnicodeDecodeError) and not _raised_by_tensorflow(e):
        raise
      self.check_shards(data_dir, splits)  # raises CorruptDataError naming the file
      bad = self.find_unparsable_shard(data_dir, splits)
      if bad:
        raise errors.CorruptDataError(
            "data shard %s of problem %s is corrupt: its records pass their checksums but are "
            "not tf.train.Examples of this problem. Regenerate the data with %s --overwrite."
            % (bad, self.name, self.datagen_command(data_dir))) from None
      message = e.message if isinstance(e, tf.errors.OpError) else str(e)
      raise errors.CorruptDataError(
          "reading the data of problem %s in %s failed: %s (every shard reads fine on its "
          "own; regenerate the data with %s --overwrite)"
          % (self.name, data_dir, message.splitlines()[0], self.datagen_command(data_dir))
      ) from None

  # -- reading -----------------------------------------------------------------------

  def _read_examples(self, mode, data_dir, split, shuffle, seed, deterministic,
                     input_context, repeat):
    """Unbatched parsed (not yet preprocessed) examples. TfdsProblem overrides this.

    Returns:
      (dataset, preprocessed): preprocessed is True when the examples are already
      preprocessed (and reversed/copied).
    """
    files = self.data_files(data_dir, split)
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_examples = False
    if num_pipelines > 1:
      if len(files) >= num_pipelines:
        files = files[pipeline_id::num_pipelines]
      else:
        shard_examples = True
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and len(files) > 1:
      # Pipelines sharding by example must all see the same file order: give them one seed.
      file_seed = seed if seed is not None or not shard_examples else int(self.random_seed or 0)
      ds = ds.shuffle(len(files), seed=file_seed, reshuffle_each_iteration=True)
    if repeat and not shard_examples:
      ds = ds.repeat()
    cycle = min(len(files), 8)
    read = lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 18)  # noqa: E731
    if cycle > 1:
      ds = ds.interleave(read, cycle_length=cycle, block_length=16,
                         num_parallel_calls=tf.data.AUTOTUNE,
                         # Sharding by example needs the same order in every pipeline.
                         deterministic=deterministic or shard_examples)
    else:
      ds = ds.interleave(read, cycle_length=1)
    if shard_examples:
      ds = ds.shard(num_pipelines, pipeline_id)
      if repeat:
        ds = ds.repeat()
    custom = type(self).preprocess_example is not Problem.preprocess_example
    return self._parse(ds, mode, deterministic, reverse_and_copy=not custom), False

  def _parse(self, records, mode, deterministic, reverse_and_copy=True):
    """Serialized tf.train.Examples -> dicts of tensors (int64 -> int32), parsed in batches.

    Variable-length features come out as rank-1 tensors that tf.data holds as ragged (its
    `unbatch` of a batch of ragged rows); inside dataset functions they are plain tensors.
    No per-example function runs here: per-example tf.data functions are the pipeline's
    main cost.
    """
    spec = self.example_reading_spec()
    decoders = None
    if isinstance(spec, tuple):
      spec, decoders = spec
    batched_spec = {}
    for name, feature in spec.items():
      if isinstance(feature, tf.io.VarLenFeature):
        batched_spec[name] = tf.io.RaggedFeature(feature.dtype, row_splits_dtype=tf.int32)
      else:
        batched_spec[name] = feature

    def parse(serialized):
      parsed = tf.io.parse_example(serialized, batched_spec)
      parsed = {k: _to_int32(v) for k, v in parsed.items()}
      return self.maybe_reverse_and_copy(parsed) if reverse_and_copy else parsed

    ds = records.batch(256).map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=deterministic).unbatch()
    if decoders:
      def decode(example):
        example = dict(example)
        for name, fn in decoders.items():
          example[name] = fn(example)
        return example
      ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds

  def maybe_reverse_and_copy(self, example):
    """Applies _rev (swap inputs and targets) and _copy (targets = inputs)."""
    if not (self._was_reversed or self._was_copy):
      return example
    example = dict(example)
    if self._was_reversed and "inputs" in example:
      example["inputs"], example["targets"] = example["targets"], example["inputs"]
    if self._was_copy and "inputs" in example:
      example["targets"] = example["inputs"]
    return example

  def examples(self, mode, data_dir, hparams=None, shuffle=False, seed=None,
               deterministic=True, input_context=None, split=None, repeat=False):
    """Unbatched, preprocessed examples (no length filtering, shuffling or batching)."""
    split = split or self.dataset_split(mode)
    self._data_dir = data_dir
    ds, preprocessed = self._read_examples(mode, data_dir, split, shuffle, seed, deterministic,
                                           input_context, repeat)
    if preprocessed:
      return ds
    if type(self).preprocess_example is Problem.preprocess_example:
      return ds  # _rev/_copy were applied while parsing

    def preprocess(example):
      example = self.preprocess_example(dict(example), mode, hparams)
      return self.maybe_reverse_and_copy(example)

    return ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)

  def dataset(self, mode, data_dir, hparams=None, shuffle=None, seed=None, input_context=None,
              split=None, repeat=None):
    """The batched dataset of a mode.

    Args:
      mode: a ModeKeys value ("train", "eval", "infer").
      data_dir: where the shards are.
      hparams: the model hparams (batching hparams read with defaults; may be partial).
      shuffle: shuffle files and examples (default: in training).
      seed: a seed for the shuffles; giving one also makes the order deterministic.
      input_context: a tf.distribute.InputContext: read this pipeline's share.
      split: read this split instead of the mode's ("test" for the long algorithmic data).
      repeat: repeat forever (default: in training).

    Returns:
      A tf.data.Dataset of dicts: "inputs" (unless a language model) and "targets", int32
      [batch, length] padded with 0 for sequence problems; classification: "inputs" [B, T]
      int32 or [B, H, W, C] float32, "targets" int32 [B].

    Raises:
      DataNotFoundError: the data is not in data_dir (the message says how to make it).
    """
    is_training = mode == ModeKeys.TRAIN
    shuffle = is_training if shuffle is None else bool(shuffle)
    repeat = is_training if repeat is None else bool(repeat)
    deterministic = bool(_hp(hparams, "deterministic_data")) or seed is not None
    if deterministic and seed is None:
      seed = int(self.random_seed or 0)
    batch_size = int(_hp(hparams, "batch_size"))
    max_length = self.max_length(hparams)
    fixed = bool(_hp(hparams, "fixed_batch_shapes"))
    drop_long = is_training or fixed or bool(_hp(hparams, "eval_drop_long_sequences"))

    ds = self.examples(mode, data_dir, hparams, shuffle=shuffle, seed=seed,
                       deterministic=deterministic, input_context=input_context, split=split,
                       repeat=repeat)
    bucketing = self.batch_size_means_tokens and not fixed
    if drop_long and (self.batch_size_means_tokens or fixed) and not bucketing:
      ds = ds.filter(lambda ex: example_length(ex) <= max_length)
    if shuffle:
      buffer = int(_hp(hparams, "shuffle_buffer_size"))
      if buffer > 1:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    if self.batch_size_means_tokens:
      if fixed:
        ds = pad_batch_fixed(ds, max(1, batch_size // max_length), max_length)
      else:
        lengths, sizes = batching_scheme(
            batch_size, max_length, int(_hp(hparams, "min_length_bucket")),
            float(_hp(hparams, "length_bucket_step")), drop_long_sequences=drop_long)
        # Dropping long examples happens in the bucketing (one function per example).
        ds = bucket_by_length(ds, lengths, sizes, overflow=not drop_long)
    else:
      if fixed:
        ds = pad_batch_fixed(ds, batch_size, max_length)
      else:
        ds = pad_batch(ds, batch_size, None)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_optimization.map_parallelization = True
    return ds.with_options(options)

  def input_fn(self, mode, data_dir, hparams=None, **kwargs):
    """A function of an InputContext for `strategy.distribute_datasets_from_function`."""
    def fn(input_context=None):
      return self.dataset(mode, data_dir, hparams, input_context=input_context, **kwargs)
    return fn


def registered_name(cls):
  """The name a Problem class is registered under (its snake_case name if not registered).

  Only a REGISTERED_NAME set on the class itself counts: a subclass inherits its parent's
  attribute, so the registry is asked which name maps to exactly this class.
  """
  name = vars(cls).get("REGISTERED_NAME")
  if name and _registered_as(name, cls):
    return name
  default = registry.default_name(cls)
  if _registered_as(default, cls):
    return default
  for candidate in registry.list_problems():
    if _registered_as(candidate, cls):
      return candidate
  return name or default


def _registered_as(name, cls):
  try:
    return registry.problem_class(name) is cls
  except errors.T2TUserError:
    return False


def _swapped(d):
  d = dict(d)
  if "inputs" in d or "targets" in d:
    d["inputs"], d["targets"] = d.get("targets"), d.get("inputs")
    if d["inputs"] is None:
      del d["inputs"]
  return d


def _to_int32(t):
  if t.dtype == tf.int64:
    return tf.cast(t, tf.int32)
  return t


def _looks_like_parse_error(e):
  msg = str(getattr(e, "message", e))
  return "parse" in msg.lower() or "record" in msg.lower() or "corrupt" in msg.lower()


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

  def key_fn(example):
    # The first bucket whose length holds the example; num when none does (overflow), or
    # num + 1 (dropped) when overflow is off.
    n = example_length(example)
    key = tf.reduce_sum(tf.cast(bounds < n, tf.int64))
    if not overflow:
      key = tf.where(key >= num, tf.constant(num + 1, tf.int64), key)
    return key

  def reduce_fn(key, window):
    batched = _pad_batch_to(window, sizes[key], pad_to[key], spec, drop_remainder=False)
    if overflow:
      return batched
    return batched.take(tf.where(key > num, tf.constant(0, tf.int64),
                                 tf.constant(-1, tf.int64)))

  return ds.group_by_window(key_fn, reduce_fn, window_size_func=lambda key: sizes[key])


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


def _raised_by_tensorflow(error):
  """True when an exception comes out of TensorFlow's own code (its last frame)."""
  import traceback  # pylint: disable=g-import-not-at-top
  frames = traceback.extract_tb(error.__traceback__)
  return bool(frames) and "tensorflow" in frames[-1].filename
