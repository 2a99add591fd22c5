"""`TranslateProblem`: translation from parallel text, one vocabulary shared by both languages.

tensor2tensor's base class of the translate_* problems. A subclass says where its sentence
pairs come from, in one of two ways:

- parallel text files: `source_data_files(split)` lists (inputs file, targets file) pairs,
  relative to --tmp_dir or absolute, one sentence a line, line n of the targets file the
  translation of line n of the inputs file (`text2text_tmpdir` is one);
- a TFDS translation dataset: `tfds_name` (e.g. "wmt_t2t_translate/de-en"), the feature
  names `source_language` / `target_language` ("en", "de"), and `tfds_split_map`, the TFDS
  split each of our splits reads. t2t-datagen looks for a prepared copy in $TFDS_DATA_DIR,
  ~/tensorflow_datasets and data_dir, and otherwise has TFDS download and prepare it into the
  first of those (this needs internet; --tmp_dir holds the downloads).

t2t-datagen builds the vocabulary both languages share from the first `max_samples_for_vocab`
training pairs (`vocab_type` "subwords", tensor2tensor's, or "sentencepiece", much faster to
build; see `t2t_lite.data.text_problems`) and writes the train and dev shards:
{"inputs": source ids + EOS, "targets": target ids + EOS}.

    @registry.register_problem
    class TranslateEnfrMine(TranslateProblem):
      vocab_type = "sentencepiece"
      approx_vocab_size = 2**14

      def source_data_files(self, split):
        if split == "train":
          return [("train.en", "train.fr"), ("more.en", "more.fr")]
        return [("dev.en", "dev.fr")]

    t2t-datagen --problem=translate_enfr_mine --tmp_dir=~/raw --data_dir=~/t2t_data \\
        --t2t_usr_dir=~/my_problems

Before anything is written, the files of every split are checked: a missing file raises
DataNotFoundError; the two files of a pair with different line counts, a split without a
line, or a file that is not UTF-8 text raise ConfigError; each message names the files
(t2t-datagen prints it on one line and exits with code 2).
"""
import codecs
import itertools
import os

import tensorflow as tf

from t2t_lite import errors
from t2t_lite.data import tfds_problem
from t2t_lite.data.text_problems import Text2TextProblem, VocabType

_CHUNK = 1 << 22


def count_lines(path):
  """The lines of a text file (a last line without a newline counts), checking it is UTF-8.

  Raises:
    ConfigError: the file is not UTF-8 text.
  """
  count = 0
  offset = 0
  last = b"\n"
  utf8 = codecs.getincrementaldecoder("utf-8")()
  with tf.io.gfile.GFile(path, "rb") as f:
    while True:
      chunk = f.read(_CHUNK)
      try:
        utf8.decode(chunk, final=not chunk)
      except UnicodeDecodeError as e:
        raise errors.ConfigError("%s is not UTF-8 text (near byte %d)"
                                 % (path, offset + max(e.start, 0))) from None
      if not chunk:
        break
      count += chunk.count(b"\n")
      offset += len(chunk)
      last = chunk[-1:]
  return count + (last != b"\n")


def read_lines(path):
  """The lines of a UTF-8 text file, stripped of surrounding whitespace (as tensor2tensor)."""
  with tf.io.gfile.GFile(path, "rb") as f:
    for number, line in enumerate(f, 1):
      try:
        yield line.decode("utf-8").strip()
      except UnicodeDecodeError:
        raise errors.ConfigError("%s line %d is not UTF-8 text" % (path, number)) from None


def _text(value):
  return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()


class TranslateProblem(Text2TextProblem):
  """Base class of translation problems (see the module docstring).

  Class attributes (besides Text2TextProblem's):
    tfds_name: the TFDS dataset to read, or None to read `source_data_files`.
    source_language, target_language: its features that become "inputs" and "targets".
    tfds_split_map: {our split: the TFDS split it reads}.
  """

  vocab_type = VocabType.SUBWORD
  approx_vocab_size = 2**15
  max_samples_for_vocab = 2**17
  tfds_name = None
  source_language = None
  target_language = None
  tfds_split_map = {"train": "train", "dev": "validation"}

  def source_data_files(self, split):
    """[(inputs file, targets file), ...] of a split ("train" or "dev"): names in --tmp_dir,
    or absolute paths."""
    raise NotImplementedError("%s must set tfds_name or implement source_data_files"
                              % type(self).__name__)

  # -- parallel text files ------------------------------------------------------------

  def data_file_pairs(self, tmp_dir, split):
    """`source_data_files(split)` as paths."""
    return [tuple(self._path(tmp_dir, name) for name in pair)
            for pair in self.source_data_files(split)]

  def _path(self, tmp_dir, name):
    if os.path.isabs(name) or "://" in name:
      return name
    if not tmp_dir:
      raise errors.ConfigError("problem %s reads %s from --tmp_dir: give --tmp_dir"
                               % (self.name, name))
    return os.path.join(tmp_dir, name)

  def check_data_files(self, tmp_dir, splits=None):
    """Checks the parallel files of the splits (default: all); returns {split: pairs}.

    Raises:
      DataNotFoundError: a file is missing.
      ConfigError: a pair of files with different line counts, a split without a line, a
        file that is not UTF-8 text.
    """
    counts = {}
    for split in splits or [s["split"] for s in self.dataset_splits()]:
      total = 0
      paths = []
      for inputs, targets in self.data_file_pairs(tmp_dir, split):
        lines = {}
        for path, side in ((inputs, "source (inputs)"), (targets, "target")):
          if not tf.io.gfile.exists(path):
            raise errors.DataNotFoundError(
                "problem %s: %s does not exist: it should hold the %s sentences of the %s "
                "split, one a line (files are read from --tmp_dir)"
                % (self.name, path, side, split))
          lines[path] = count_lines(path)
          paths.append(path)
        if lines[inputs] != lines[targets]:
          raise errors.ConfigError(
              "problem %s: %s has %d lines but %s has %d: line n of the inputs file must "
              "be the source of line n of the targets file"
              % (self.name, inputs, lines[inputs], targets, lines[targets]))
        total += lines[inputs]
      if not total:
        raise errors.ConfigError("problem %s: the %s split is empty (%s: no lines)"
                                 % (self.name, split, ", ".join(paths) or "no files"))
      counts[split] = total
    return counts

  # -- TFDS -------------------------------------------------------------------------

  def tfds_data_dirs(self, data_dir):
    """Where a prepared copy is looked for: $TFDS_DATA_DIR, ~/tensorflow_datasets,
    data_dir; one is prepared into the first."""
    dirs = tfds_problem.tfds_data_dirs()
    if data_dir and data_dir not in dirs:
      dirs.append(data_dir)
    return dirs

  def _tfds_builder(self, data_dir):
    return tfds_problem.find_builder(self.tfds_name, self.tfds_data_dirs(data_dir), self.name)

  def _not_prepared(self, data_dir, detail=""):
    return tfds_problem.not_prepared_error(self.tfds_name, self.name,
                                           self.tfds_data_dirs(data_dir),
                                           self.datagen_command(data_dir or "DIR"), detail)

  def _tfds_samples(self, data_dir, split):
    if split not in self.tfds_split_map:
      raise errors.ConfigError("problem %s has no split %r (it has %s)"
                               % (self.name, split, ", ".join(self.tfds_split_map)))
    ds = tfds_problem.read_split(self._tfds_builder(data_dir), self.tfds_split_map[split],
                                 False, None, lambda: self._not_prepared(data_dir))
    keys = (self.source_language, self.target_language)
    for example in ds.as_numpy_iterator():
      missing = [k for k in keys if k not in example]
      if missing:
        raise errors.ConfigError("problem %s: the TFDS dataset %r has no feature %r (it has %s)"
                                 % (self.name, self.tfds_name, missing[0],
                                    ", ".join(sorted(example))))
      yield {"inputs": _text(example[keys[0]]), "targets": _text(example[keys[1]])}

  # -- generation --------------------------------------------------------------------

  def generate_samples(self, data_dir, tmp_dir, split):
    """Yields {"inputs": source sentence, "targets": its translation}."""
    if self.tfds_name:
      yield from self._tfds_samples(data_dir, split)
      return
    for inputs, targets in self.data_file_pairs(tmp_dir, split):
      for source, target in itertools.zip_longest(read_lines(inputs), read_lines(targets)):
        if source is None or target is None:
          raise errors.ConfigError("problem %s: %s and %s have different line counts"
                                   % (self.name, inputs, targets))
        yield {"inputs": source, "targets": target}

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    """Checks the sources (or prepares the TFDS dataset), then writes the vocabulary and
    the shards of the splits not yet complete."""
    if not self.data_exists(data_dir):
      if self.tfds_name:
        tfds_problem.prepare(self._tfds_builder(data_dir), tmp_dir,
                             lambda detail: self._not_prepared(data_dir, detail))
      else:
        self.check_data_files(tmp_dir)
    super().generate_data(data_dir, tmp_dir, task_id)
