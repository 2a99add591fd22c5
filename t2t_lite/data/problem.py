"""`Problem`: a task's data, how it is generated, read, preprocessed and batched.

A Problem keeps tensor2tensor's hooks; a subclass fills in the ones it needs:

- `generate_data(data_dir, tmp_dir, task_id=-1)`: write the TFRecord shards (see
  `t2t_lite.data.generator_utils`); `dataset_splits()` says which splits and how many shards.
- `hparams(defaults, model_hparams)`: set `defaults.vocab_size` / `defaults.modality`
  (dicts keyed by "inputs" and "targets"); `defaults.data_dir` is where the vocabularies are.
- `feature_encoders(data_dir)`: {"inputs": encoder, "targets": encoder}.
- `example_reading_spec()`: the `tf.io` features of a stored example.
- `preprocess_example(example, mode, hparams)`: one parsed example -> one example.
- `eval_metrics()`, `max_length(model_hparams)`, `packed_length(model_hparams)`.

and gets, for free:

- `get_hparams(model_hparams, data_dir)`: the problem hparams the model is built with.
- `dataset(mode, data_dir, hparams)`: a batched `tf.data.Dataset` of feature dicts (the
  pipeline and its batching rules: `t2t_lite.data.pipeline`).
- `data_exists(data_dir)`, `data_files(data_dir, split)` (the shard look-up:
  `t2t_lite.data.problem_files`), `check_shards(data_dir)`, `reading_errors(data_dir)`
  (corrupt shards: `t2t_lite.data.integrity`).

A Problem keeps no state besides its class attributes and the _rev / _copy modifiers: every
method that reads data takes the data_dir, and no answer depends on an earlier call.

A corrupt shard fails the iteration of `dataset()` with a message naming it, in a `for` loop
(`CorruptDataError`), a `keras.Model.fit` or a `tf.function` (`InvalidArgumentError`, which
`with problem.reading_errors(data_dir):` turns into `CorruptDataError`); see `integrity`.
"""
import tensorflow as tf

from t2t_lite import common_hparams
from t2t_lite import registry
from t2t_lite.constants import ModeKeys
from t2t_lite.data import integrity
from t2t_lite.data import packing
from t2t_lite.data import pipeline
from t2t_lite.data import problem_files
from t2t_lite.data import text_encoder
from t2t_lite.hparams import HParams


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

  # -- names -------------------------------------------------------------------------

  @property
  def base_name(self):
    """The registered name without the _rev / _copy modifiers."""
    return registry.problem_name_of(type(self))

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

    The default reads the vocab sizes from `feature_encoders(defaults.data_dir)` and uses
    symbol modalities.
    """
    del model_hparams
    encoders = self.feature_encoders(defaults.data_dir)
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
    """Training examples longer than this are dropped (hparams.max_length; 0 means
    batch_size; basic_params1's when the hparams lack it)."""
    return int(common_hparams.get(model_hparams, "max_length") or
               common_hparams.get(model_hparams, "batch_size"))

  def packed_length(self, model_hparams):
    """The row length training batches are packed to when the hparam `packed_length` is -1
    (its default); 0: no packing. See `t2t_lite.data.packing`.

    0 here: packing pays only where examples are much shorter than a batch's rows and the
    model reads packed rows; text problems turn it on.
    """
    del model_hparams
    return 0

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

    The answer depends only on the arguments (nothing is kept from an earlier call).

    Args:
      model_hparams: the model's HParams (or None).
      data_dir: where the vocabularies are; defaults to `model_hparams.data_dir` when the
        model hparams have one (tensor2tensor's way), else None (problems whose encoders need
        no files).

    Returns:
      An HParams with vocab_size and modality ({"inputs": ..., "targets": ...}), has_inputs,
      was_reversed, was_copy, batch_size_means_tokens, loss_multiplier, stop_at_eos, and
      data_dir (the one the encoders were read from).
    """
    if not data_dir and model_hparams is not None:
      data_dir = getattr(model_hparams, "data_dir", None)
    hp = HParams(
        vocab_size={},
        modality={},
        data_dir=data_dir or None,
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
    return problem_files.data_filepattern(self, data_dir, split)

  def datagen_command(self, data_dir):
    return problem_files.datagen_command(self, data_dir)

  def data_files(self, data_dir, split):
    """The complete shards of a split.

    Raises:
      DataNotFoundError: none there, or fewer than the count their names announce.
    """
    return problem_files.data_files(self, data_dir, split)

  def data_exists(self, data_dir, splits=None):
    """True when every split (default: all of dataset_splits) has all its shards."""
    return problem_files.data_exists(self, data_dir, splits)

  def check_shards(self, data_dir, splits=None):
    """Reads every shard of the splits (default: all) through; returns {split: examples}.

    Each record's checksum is checked, the records must fill the file exactly and parse as
    this problem's examples. Nothing calls this before training (reading the data checks the
    shards anyway, see `dataset`); call it to check a data_dir up front, e.g. after copying it.

    Raises:
      DataNotFoundError: a split is missing.
      CorruptDataError: a shard is truncated or corrupt (the message names it).
    """
    return integrity.check_shards(self, data_dir, splits)

  def find_unparsable_shard(self, data_dir, splits=None):
    """The first shard of the splits present that does not read through as this problem's
    examples (a checksum, a cut, or well-framed records that do not parse), or None."""
    return integrity.find_unparsable_shard(self, data_dir, splits)

  def reading_errors(self, data_dir, splits=None):
    """A context manager: a corrupt shard met inside (tf.data's `DataLossError`, the
    `InvalidArgumentError` of the pipeline's own check or of a record that does not parse) is
    re-raised as `CorruptDataError` naming the shard."""
    return integrity.reading_errors(self, data_dir, splits)

  # -- reading -----------------------------------------------------------------------

  def _read_examples(self, mode, data_dir, split, shuffle, seed, deterministic,
                     input_context, repeat, hparams=None):
    """Unbatched parsed (not yet preprocessed) examples. TfdsProblem overrides this.

    Returns:
      (dataset, preprocessed): preprocessed is True when the examples are already
      preprocessed (and reversed/copied).
    """
    del mode, hparams
    files = self.data_files(data_dir, split)
    # Without a preprocess_example of its own, _rev/_copy are applied while parsing.
    parse_block, decoders = pipeline.example_parser(
        self.example_reading_spec(),
        None if self._custom_preprocess() else self.maybe_reverse_and_copy)
    ds = pipeline.read_shards(files, parse_block, integrity.report_for(self, data_dir),
                              shuffle=shuffle, seed=seed, deterministic=deterministic,
                              input_context=input_context, repeat=repeat,
                              order_seed=self.random_seed)
    return pipeline.decode(ds, decoders, deterministic), False

  def _custom_preprocess(self):
    return type(self).preprocess_example is not Problem.preprocess_example

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
    ds, preprocessed = self._read_examples(mode, data_dir, split, shuffle, seed, deterministic,
                                           input_context, repeat, hparams=hparams)
    if not preprocessed and self._custom_preprocess():
      def preprocess(example):
        example = self.preprocess_example(dict(example), mode, hparams)
        return self.maybe_reverse_and_copy(example)

      ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return integrity.reported(ds, self, data_dir, [split])

  def dataset(self, mode, data_dir, hparams=None, shuffle=None, seed=None, input_context=None,
              split=None, repeat=None):
    """The batched dataset of a mode.

    Args:
      mode: a ModeKeys value ("train", "eval", "infer").
      data_dir: where the shards are.
      hparams: the model hparams (batching hparams read with basic_params1's defaults; may
        be partial or None).
      shuffle: shuffle files and examples (default: in training).
      seed: a seed for the shuffles; giving one also makes the order deterministic.
      input_context: a tf.distribute.InputContext: read this pipeline's share.
      split: read this split instead of the mode's ("test" for the long algorithmic data).
      repeat: repeat forever (default: in training).

    Returns:
      A tf.data.Dataset of dicts: "inputs" (unless a language model) and "targets", int32
      [batch, length] padded with 0 for sequence problems (packed training rows add
      "*_segmentation" and "*_position", see `t2t_lite.data.packing`); classification:
      "inputs" [B, T] int32 or [B, H, W, C] float32, "targets" int32 [B]. Iterated
      eagerly, it raises CorruptDataError naming a corrupt shard.

    Raises:
      DataNotFoundError: the data is not in data_dir (the message says how to make it).
    """
    is_training = mode == ModeKeys.TRAIN
    split = split or self.dataset_split(mode)
    shuffle = is_training if shuffle is None else bool(shuffle)
    repeat = is_training if repeat is None else bool(repeat)
    deterministic = bool(common_hparams.get(hparams, "deterministic_data")) or seed is not None
    if deterministic and seed is None:
      seed = int(self.random_seed or 0)
    ds = self.examples(mode, data_dir, hparams, shuffle=shuffle, seed=seed,
                       deterministic=deterministic, input_context=input_context, split=split,
                       repeat=repeat)
    packed_length = 0
    if is_training and self.batch_size_means_tokens:
      packed_length = packing.resolve_packed_length(hparams, self.packed_length(hparams))
    ds = pipeline.batch_examples(ds, hparams, self.max_length(hparams),
                                 batch_size_means_tokens=self.batch_size_means_tokens,
                                 training=is_training, shuffle=shuffle, seed=seed,
                                 deterministic=deterministic, packed_length=packed_length)
    return integrity.reported(ds, self, data_dir, [split])


# The name a Problem class is registered under; the registry answers it.
registered_name = registry.problem_name_of


def _swapped(d):
  d = dict(d)
  if "inputs" in d or "targets" in d:
    d["inputs"], d["targets"] = d.get("targets"), d.get("inputs")
    if d["inputs"] is None:
      del d["inputs"]
  return d
