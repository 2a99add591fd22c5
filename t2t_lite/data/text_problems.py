"""Base classes for text problems: subclass one and write `generate_samples`.

- `Text2TextProblem`: pairs of strings, {"inputs": str, "targets": str} (translation,
  summarization, ...).
- `Text2SelfProblem`: language models, {"targets": str} only.

Training batches of both are packed by default (several examples a row of max_length tokens;
`packed_length`, see `t2t_lite.data.packing`); evaluation reads one example a row.

The vocabulary (`vocab_type`) is one of:

- "character": UTF-8 bytes (`ByteTextEncoder`, 258 ids, no file);
- "subwords": a `SubwordTextEncoder` of about `approx_vocab_size` ids built from the first
  `max_samples_for_vocab` training samples, saved as `vocab.<problem>.<size>.subwords` (a
  tensor2tensor vocabulary file of that name in data_dir is read as it is);
- "sentencepiece": a `SentencePieceEncoder` of (at most) `approx_vocab_size` ids trained on
  the same samples (the `sentencepiece` package; seconds, where subwords take minutes on a
  large corpus), saved as `vocab.<problem>.<size>.sentencepiece.model`;
- "tokens": the most frequent `approx_vocab_size` whitespace tokens (unknown -> `<UNK>`),
  saved as `vocab.<problem>.<size>.tokens`.

`additional_reserved_tokens` (subwords and sentencepiece) get ids 2, 3, ... in order.

Ids are written with EOS (1) appended to every sequence.

    @registry.register_problem
    class MyTranslation(Text2TextProblem):
      vocab_type = "subwords"
      approx_vocab_size = 2**13

      def generate_samples(self, data_dir, tmp_dir, split):
        for line in open(os.path.join(tmp_dir, split + ".tsv")):
          source, target = line.rstrip("\\n").split("\\t")
          yield {"inputs": source, "targets": target}

    t2t-datagen --problem=my_translation --data_dir=~/t2t_data --tmp_dir=~/raw \\
        --t2t_usr_dir=~/my_problems
"""
import os

import tensorflow as tf

from t2t_lite import errors
from t2t_lite.data import generator_utils
from t2t_lite.data import sentencepiece_encoder
from t2t_lite.data import text_encoder
from t2t_lite.data.problem import Problem


class VocabType:
  CHARACTER = "character"
  SUBWORD = "subwords"
  TOKEN = "tokens"
  SENTENCEPIECE = "sentencepiece"


# The file name suffix of each vocabulary kind that has a file.
_VOCAB_SUFFIX = {VocabType.SUBWORD: "subwords", VocabType.TOKEN: "tokens",
                 VocabType.SENTENCEPIECE: "sentencepiece.model"}


class Text2TextProblem(Problem):
  """Base class of problems on pairs of strings.

  Class attributes:
    vocab_type: "character", "subwords", "sentencepiece" or "tokens".
    approx_vocab_size: the target size of a subword, sentencepiece or token vocabulary.
    max_samples_for_vocab: how many training samples the vocabulary is built from (None:
      all of them).
    additional_reserved_tokens: tokens with ids 2, 3, ... (subwords, sentencepiece), e.g.
      ("<S>", "<E>").
    num_train_shards, num_dev_shards: shards per split.
    is_generate_per_split: True when `generate_samples` yields each split's data; False when
      it yields one stream (split "train") that is divided among the train and dev shards in
      proportion to their counts.
  """

  vocab_type = VocabType.SUBWORD
  approx_vocab_size = 2**15
  max_samples_for_vocab = 20000
  additional_reserved_tokens = ()
  num_train_shards = 10
  num_dev_shards = 1
  is_generate_per_split = True
  datagen_progress = None

  def generate_samples(self, data_dir, tmp_dir, split):
    """Yields {"inputs": str, "targets": str} (bytes also work for "character")."""
    raise NotImplementedError("%s must implement generate_samples" % type(self).__name__)

  def dataset_splits(self):
    return [{"split": "train", "shards": self.num_train_shards},
            {"split": "dev", "shards": self.num_dev_shards}]

  def eval_metrics(self):
    return super().eval_metrics() + ["approx_bleu_score"]

  def packed_length(self, model_hparams):
    """Training rows of max_length tokens, several sentences each (`t2t_lite.data.packing`):
    every example training keeps fits in a row. Language models (`Text2SelfProblem`) pack
    their targets alone."""
    return self.max_length(model_hparams)

  # -- vocabulary --------------------------------------------------------------------

  @property
  def vocab_filename(self):
    suffix = _VOCAB_SUFFIX.get(self.vocab_type, VocabType.TOKEN)
    return "vocab.%s.%d.%s" % (self.dataset_filename(), self.approx_vocab_size, suffix)

  def _vocab_texts(self, data_dir, tmp_dir):
    count = 0
    for sample in self.generate_samples(data_dir, tmp_dir, "train"):
      for key in ("inputs", "targets"):
        if key in sample:
          text = sample[key]
          yield text.decode("utf-8", "replace") if isinstance(text, bytes) else text
      count += 1
      if self.max_samples_for_vocab and count >= self.max_samples_for_vocab:
        break

  def get_or_create_vocab(self, data_dir, tmp_dir, force_get=False):
    """The encoder; a subword, sentencepiece or token vocabulary is built (and saved) when
    missing.

    Raises:
      DataNotFoundError: force_get and the vocabulary file is not in data_dir.
      CorruptDataError: the vocabulary file is not readable (the message names it).
      ConfigError: an unknown vocab_type, or no training text to build a vocabulary from.
    """
    if self.vocab_type == VocabType.CHARACTER:
      return text_encoder.ByteTextEncoder()
    if self.vocab_type not in _VOCAB_SUFFIX:
      raise errors.ConfigError("%s: unknown vocab_type %r (%s)" % (
          self.name, self.vocab_type, ", ".join([VocabType.CHARACTER] + list(_VOCAB_SUFFIX))))
    path = os.path.join(data_dir or "", self.vocab_filename)
    if data_dir and tf.io.gfile.exists(path):
      return self._load_vocab(path)
    if force_get or not data_dir:
      raise errors.DataNotFoundError(
          "the vocabulary of problem %s is not in data_dir %s (looked for %s). Create it "
          "with: %s" % (self.name, data_dir, path, self.datagen_command(data_dir or "DIR")))
    texts = list(self._vocab_texts(data_dir, tmp_dir))
    if not any(texts):
      raise errors.ConfigError("problem %s: the training data has no text to build the %s "
                               "vocabulary from" % (self.name, self.vocab_type))
    reserved = text_encoder.RESERVED_TOKENS + tuple(self.additional_reserved_tokens)
    if self.vocab_type == VocabType.SUBWORD:
      enc = text_encoder.SubwordTextEncoder.build_from_corpus(
          texts, self.approx_vocab_size, reserved_tokens=reserved)
    elif self.vocab_type == VocabType.SENTENCEPIECE:
      enc = sentencepiece_encoder.SentencePieceEncoder.build_from_corpus(
          texts, self.approx_vocab_size, reserved_tokens=reserved)
    else:
      enc = text_encoder.TokenTextEncoder.build_from_corpus(texts, self.approx_vocab_size)
    tf.io.gfile.makedirs(data_dir)
    tmp = path + ".incomplete"
    enc.store_to_file(tmp)
    written = tmp + (".subwords" if self.vocab_type == VocabType.SUBWORD else "")
    tf.io.gfile.rename(written, path, overwrite=True)
    return enc

  def _load_vocab(self, path):
    if self.vocab_type == VocabType.SUBWORD:
      return text_encoder.SubwordTextEncoder(path)
    if self.vocab_type == VocabType.SENTENCEPIECE:
      return sentencepiece_encoder.SentencePieceEncoder(path)
    return text_encoder.TokenTextEncoder(path, replace_oov="<UNK>")

  def vocab_files(self, data_dir):
    """The vocabulary files the encoders read (a run records their fingerprint)."""
    if self.vocab_type == VocabType.CHARACTER or not data_dir:
      return []
    return [os.path.join(data_dir, self.vocab_filename)]

  def feature_encoders(self, data_dir):
    enc = self.get_or_create_vocab(data_dir, None, force_get=True)
    if self.has_inputs:
      return {"inputs": enc, "targets": enc}
    return {"targets": enc}

  # -- generation --------------------------------------------------------------------

  def generate_encoded_samples(self, data_dir, tmp_dir, split):
    """Yields the samples of a split as ids with EOS appended."""
    enc = self.get_or_create_vocab(data_dir, tmp_dir)
    eos = [text_encoder.EOS_ID]
    for sample in self.generate_samples(data_dir, tmp_dir, split):
      out = {"targets": enc.encode(sample["targets"]) + eos}
      if self.has_inputs:
        out["inputs"] = enc.encode(sample["inputs"]) + eos
      yield out

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    """Writes the vocabulary (if any) and every split's shards (skipping complete splits)."""
    del task_id
    tf.io.gfile.makedirs(data_dir)
    generator_utils.remove_incomplete(data_dir, self.dataset_filename())
    split_paths = [(s["split"], generator_utils.shard_paths(
        data_dir, self.dataset_filename(), s["split"], s["shards"]))
                   for s in self.dataset_splits()]
    if self.is_generate_per_split:
      for split, paths in split_paths:
        if generator_utils.outputs_exist(paths):
          continue
        generator_utils.generate_files(self.generate_encoded_samples(data_dir, tmp_dir, split),
                                       paths, progress=self.datagen_progress)
    else:
      paths = [p for _, ps in split_paths for p in ps]
      generator_utils.generate_files(self.generate_encoded_samples(data_dir, tmp_dir, "train"),
                                     paths, progress=self.datagen_progress)


class Text2SelfProblem(Text2TextProblem):
  """A language model: `generate_samples` yields {"targets": str}; examples have "targets"."""

  @property
  def has_inputs(self):
    return False

  def eval_metrics(self):
    return ["accuracy", "accuracy_top5", "accuracy_per_sequence", "neg_log_perplexity"]
