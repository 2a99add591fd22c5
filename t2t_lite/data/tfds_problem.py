"""`TfdsProblem`: a TensorFlow Datasets dataset seen through the Problem interface.

A subclass names the TFDS dataset, which TFDS split each of our splits reads, and which TFDS
feature becomes "inputs" and "targets":

    @registry.register_problem
    class ImageMnist(TfdsProblem):
      tfds_name = "mnist"
      split_map = {"train": "train", "dev": "test"}
      feature_map = {"inputs": "image", "targets": "label"}
      inputs_kind = "image"          # "image" (uint8 -> float32 in [0, 1]) or "text"
      targets_kind = "class_label"   # "class_label" or "text"

The data is read from TFDS's own files: the first of `--data_dir`, `$TFDS_DATA_DIR` and
TFDS's default (~/tensorflow_datasets) in which the dataset is prepared. Nothing is written in
our shard format; `t2t-datagen` only asks TFDS to prepare the dataset (which needs internet)
and builds the subword vocabulary of a text problem, in data_dir.

Where the dataset is not prepared and cannot be downloaded, `dataset()` raises
`DataNotFoundError` saying where it looked and how to prepare it elsewhere
(`tfds build NAME --data_dir=DIR` on a machine with internet, then copy DIR/NAME).

Text inputs: "character" vocab (bytes, encoded with TF ops), or "subwords" (a subword
vocabulary built by t2t-datagen from the training text; encoding runs in Python through
tf.py_function, slower). Text inputs longer than max_length are cut to max_length - 1 ids
plus EOS (classification keeps every example).

The module's functions (`tfds_data_dirs`, `find_builder`, `prepare`, `read_split`,
`not_prepared_error`) also serve problems that write a TFDS dataset into shards instead
(`t2t_lite.data.translate.TranslateProblem`).
"""
import os

import tensorflow as tf

from t2t_lite import common_hparams
from t2t_lite import errors
from t2t_lite.constants import ModeKeys
from t2t_lite.data import text_encoder
from t2t_lite.data.problem import Problem

_NOT_PREPARED_HINTS = ("could not find data", "not found", "no such file", "does not exist",
                       "please make sure to call", "download_and_prepare")


def _tfds():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


# -- TFDS access, shared with the problems that turn a TFDS dataset into shards -----------------

def tfds_data_dirs(*first):
  """The directories TFDS data is looked for in, in order and without repeats: `first`
  (those not None), then $TFDS_DATA_DIR and TFDS's default (~/tensorflow_datasets)."""
  dirs = []
  for d in list(first) + [os.environ.get("TFDS_DATA_DIR"),
                          os.path.join(os.path.expanduser("~"), "tensorflow_datasets")]:
    if d and d not in dirs:
      dirs.append(d)
  return dirs


def find_builder(tfds_name, dirs, problem_name):
  """The builder of the first of `dirs` holding the prepared dataset (else of dirs[0]).

  Raises:
    DataNotFoundError: TFDS has no dataset of that name.
  """
  tfds = _tfds()
  for d in dirs:
    try:
      builder = tfds.builder(tfds_name, data_dir=d)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.DataNotFoundError(
          "TFDS has no dataset %r (problem %s): %s" % (tfds_name, problem_name, e)) from None
    try:
      if builder.is_prepared():
        return builder
    except Exception:  # pylint: disable=broad-except
      pass
  return tfds.builder(tfds_name, data_dir=dirs[0])


def not_prepared_error(tfds_name, problem_name, dirs, datagen_command, detail=""):
  """The DataNotFoundError of a dataset prepared in none of `dirs` (how to prepare it)."""
  return errors.DataNotFoundError(
      "the TFDS dataset %r of problem %s is not prepared in %s%s, and it cannot be "
      "downloaded from here. Prepare it on a machine with internet (`pip install "
      "tensorflow-datasets; tfds build %s --data_dir=DIR`), copy DIR/%s into one of those "
      "directories (or set TFDS_DATA_DIR=DIR), then run %s"
      % (tfds_name, problem_name, " or ".join(dirs), (" (%s)" % detail) if detail else "",
         tfds_name, tfds_name.split("/")[0], datagen_command))


def prepare(builder, download_dir, error):
  """Asks TFDS to download and prepare the dataset unless it is prepared (needs internet).

  `error(detail)` makes the exception raised when that fails."""
  if builder.is_prepared():
    return
  try:
    builder.download_and_prepare(download_dir=download_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise error("%s: %s" % (type(e).__name__, (str(e).splitlines() or [""])[0][:200])
                ) from None


def read_split(builder, tfds_split, shuffle, seed, error):
  """`builder.as_dataset(tfds_split)`; `error()` makes the exception raised when the data
  is not there."""
  tfds = _tfds()
  read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
  try:
    return builder.as_dataset(split=tfds_split, shuffle_files=shuffle, read_config=read_config)
  except (AssertionError, FileNotFoundError, tf.errors.NotFoundError, ValueError) as e:
    text = str(e).lower()
    if any(h in text for h in _NOT_PREPARED_HINTS) or not builder.is_prepared():
      raise error() from None
    raise


class TfdsProblem(Problem):
  """Base class of problems read from a TFDS dataset (see the module docstring)."""

  tfds_name = None
  split_map = {"train": "train", "dev": "test"}
  feature_map = {"inputs": "image", "targets": "label"}
  inputs_kind = "image"
  targets_kind = "class_label"
  vocab_type = "character"  # text inputs: "character" or "subwords"
  approx_vocab_size = 2**13
  max_samples_for_vocab = 5000
  batch_size_means_tokens = False

  # -- TFDS access -------------------------------------------------------------------

  def tfds_data_dirs(self, data_dir):
    """The directories looked in, in order: data_dir, $TFDS_DATA_DIR, TFDS's default."""
    return tfds_data_dirs(data_dir)

  def _builder(self, data_dir):
    """The builder of the first directory holding the prepared dataset (else data_dir's)."""
    return find_builder(self.tfds_name, self.tfds_data_dirs(data_dir), self.name)

  def not_prepared_error(self, data_dir, detail=""):
    return not_prepared_error(self.tfds_name, self.name, self.tfds_data_dirs(data_dir),
                              self.datagen_command(data_dir or "DIR"), detail)

  def data_exists(self, data_dir, splits=None):
    del splits
    try:
      prepared = self._builder(data_dir).is_prepared()
    except errors.T2TUserError:
      return False
    if not prepared:
      return False
    return self.inputs_kind != "text" or self.vocab_type != "subwords" or (
        data_dir and tf.io.gfile.exists(self._vocab_path(data_dir)))

  def data_files(self, data_dir, split):
    raise errors.ConfigError("problem %s reads TFDS's files (%s), not shards"
                             % (self.name, self.tfds_name))

  def check_shards(self, data_dir, splits=None):
    """TFDS checks its own files; returns {split: number of examples} from its metadata."""
    builder = self._builder(data_dir)
    splits = splits or [s["split"] for s in self.dataset_splits()]
    try:
      return {s: builder.info.splits[self.split_map[s]].num_examples for s in splits}
    except Exception:  # pylint: disable=broad-except
      return {}

  def dataset_splits(self):
    return [{"split": s, "shards": 0} for s in self.split_map]

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    """Asks TFDS to prepare the dataset (needs internet), then builds the vocabulary."""
    del task_id
    prepare(self._builder(data_dir), tmp_dir,
            lambda detail: self.not_prepared_error(data_dir, detail))
    if self.inputs_kind == "text" and self.vocab_type == "subwords":
      self._build_vocab(data_dir)

  # -- encoders and hparams ----------------------------------------------------------

  def _vocab_path(self, data_dir):
    return os.path.join(data_dir, "vocab.%s.%d.subwords" % (self.dataset_filename(),
                                                           self.approx_vocab_size))

  def _build_vocab(self, data_dir):
    path = self._vocab_path(data_dir)
    if tf.io.gfile.exists(path):
      return text_encoder.SubwordTextEncoder(path)
    ds = self._tfds_split(data_dir, self.split_map["train"], shuffle=False, seed=None)
    key = self.feature_map["inputs"]

    def texts():
      for i, ex in enumerate(ds.as_numpy_iterator()):
        if i >= self.max_samples_for_vocab:
          return
        yield ex[key].decode("utf-8", "replace")

    enc = text_encoder.SubwordTextEncoder.build_from_corpus(texts(), self.approx_vocab_size)
    tf.io.gfile.makedirs(data_dir)
    tmp = path[:-len(".subwords")] + ".incomplete"
    enc.store_to_file(tmp)
    tf.io.gfile.rename(tmp + ".subwords", path, overwrite=True)
    return enc

  def vocab_files(self, data_dir):
    """The vocabulary files the encoders read (a run records their fingerprint)."""
    if self.inputs_kind == "image" or self.vocab_type != "subwords" or not data_dir:
      return []
    return [self._vocab_path(data_dir)]

  def _inputs_encoder(self, data_dir):
    if self.inputs_kind == "image":
      return text_encoder.ImageEncoder(*self.image_shape)
    if self.vocab_type == "subwords":
      path = self._vocab_path(data_dir or "")
      if not data_dir or not tf.io.gfile.exists(path):
        raise errors.DataNotFoundError(
            "the subword vocabulary of problem %s is not in data_dir %s (looked for %s). "
            "Create it with: %s" % (self.name, data_dir, path,
                                    self.datagen_command(data_dir or "DIR")))
      return text_encoder.SubwordTextEncoder(path)
    return text_encoder.ByteTextEncoder()

  @property
  def image_shape(self):
    return (28, 28, 1)

  def class_labels(self, data_dir=None):
    """The class names (from TFDS's metadata when available)."""
    try:
      feature = self._builder(data_dir).info.features[self.feature_map["targets"]]
      return list(feature.names)
    except Exception:  # pylint: disable=broad-except
      return [str(i) for i in range(self.num_classes)]

  num_classes = 10

  def feature_encoders(self, data_dir):
    targets = (text_encoder.ClassLabelEncoder(self.class_labels(data_dir))
               if self.targets_kind == "class_label" else text_encoder.ByteTextEncoder())
    return {"inputs": self._inputs_encoder(data_dir), "targets": targets}

  def hparams(self, defaults, model_hparams):
    del model_hparams
    if self.inputs_kind == "image":
      defaults.vocab_size["inputs"] = 256
      defaults.modality["inputs"] = "image"
    else:
      defaults.vocab_size["inputs"] = self._inputs_encoder(defaults.data_dir).vocab_size
      defaults.modality["inputs"] = "symbol"
    if self.targets_kind == "class_label":
      defaults.vocab_size["targets"] = self.num_classes
      defaults.modality["targets"] = "class_label"
    else:
      defaults.vocab_size["targets"] = 258
      defaults.modality["targets"] = "symbol"

  def eval_metrics(self):
    return ["accuracy"]

  # -- reading -----------------------------------------------------------------------

  def _tfds_split(self, data_dir, tfds_split, shuffle, seed):
    return read_split(self._builder(data_dir), tfds_split, shuffle, seed,
                      lambda: self.not_prepared_error(data_dir))

  def _convert(self, features, mode, hparams, data_dir):
    """A TFDS example -> {"inputs", "targets"} in our dtypes."""
    inputs = features[self.feature_map["inputs"]]
    targets = features[self.feature_map["targets"]]
    if self.inputs_kind == "image":
      inputs = tf.cast(inputs, tf.float32) / 255.0
    else:
      inputs = self._encode_text(inputs, data_dir)
      limit = self.max_length(hparams) - 1
      inputs = tf.concat([inputs[:limit], [text_encoder.EOS_ID]], 0)
    if self.targets_kind == "class_label":
      targets = tf.cast(targets, tf.int32)
    else:
      targets = tf.concat([self._encode_text(targets, data_dir), [text_encoder.EOS_ID]], 0)
    return {"inputs": inputs, "targets": targets}

  def _encode_text(self, text, data_dir):
    if self.vocab_type == "subwords":
      enc = self._inputs_encoder(data_dir)

      def encode(t):
        return tf.constant(enc.encode(t.numpy().decode("utf-8", "replace")), tf.int32)

      ids = tf.py_function(encode, [text], tf.int32)
      ids.set_shape([None])
      return ids
    return tf.cast(tf.io.decode_raw(text, tf.uint8), tf.int32) + text_encoder.NUM_RESERVED_TOKENS

  def _read_examples(self, mode, data_dir, split, shuffle, seed, deterministic,
                     input_context, repeat, hparams=None):
    if split not in self.split_map:
      raise errors.ConfigError("problem %s has no split %r (it has %s)"
                               % (self.name, split, ", ".join(self.split_map)))
    # Every pipeline reads the same order (same seed) and keeps its share of the examples.
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    if num_pipelines > 1 and seed is None:
      seed = int(self.random_seed or 0)
    ds = self._tfds_split(data_dir, self.split_map[split], shuffle, seed)
    if num_pipelines > 1:
      ds = ds.shard(num_pipelines, input_context.input_pipeline_id)
    if repeat:
      ds = ds.repeat()
    custom = self._custom_preprocess()

    def convert(features):
      example = self._convert(features, mode, hparams, data_dir)
      if custom:
        example = self.preprocess_example(example, mode, hparams)
      return self.maybe_reverse_and_copy(example)

    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds, True

  def max_length(self, model_hparams):
    return int(common_hparams.get(model_hparams, "max_length") or 512)


__all__ = ["TfdsProblem", "ModeKeys", "find_builder", "not_prepared_error", "prepare",
           "read_split", "tfds_data_dirs"]
