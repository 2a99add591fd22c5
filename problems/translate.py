"""Translation problems (see `t2t_lite.data.translate.TranslateProblem`).

- `text2text_tmpdir`: your own parallel text, no code: --tmp_dir holds inputs.train.txt,
  targets.train.txt, inputs.eval.txt and targets.eval.txt, one example a line (line n of a
  targets file is the output for line n of its inputs file). t2t-datagen checks the line
  counts, builds an 8k SentencePiece vocabulary with byte fallback shared by inputs and
  targets (`vocab.text2text_tmpdir.8192.sentencepiece.model`), and writes 10 train shards and
  1 dev shard.
- `text2text_tmpdir_subwords`: the same files with tensor2tensor's vocabulary for this
  problem, 32k subwords (`vocab.text2text_tmpdir.32768.subwords`); it reads and writes the
  same file names as tensor2tensor's `text2text_tmpdir`, so a data_dir made by tensor2tensor
  (or by t2t_lite before SentencePiece became the default) works with it as it is.
- `translate_ende_wmt32k`, `translate_ende_wmt8k`: English -> German on tensor2tensor's WMT
  data, read from TFDS `wmt_t2t_translate/de-en` (train: Europarl v7, Common Crawl, News
  Commentary v13; dev: newstest2013), with 32k / 8k shared subwords; 100 train shards, 1 dev.
  TFDS downloads and prepares the data on the first t2t-datagen (it needs internet; prepare
  it elsewhere with `tfds build wmt_t2t_translate` and set TFDS_DATA_DIR otherwise).

    t2t-datagen --problem=text2text_tmpdir --tmp_dir=~/my_pairs --data_dir=~/t2t_data
    t2t-datagen --problem=translate_ende_wmt32k --data_dir=~/t2t_data

For another vocabulary size or type, or other files, subclass in a --t2t_usr_dir:

    @registry.register_problem
    class Text2textTmpdirSp8k(Text2textTmpdir):
      vocab_type = "sentencepiece"
      approx_vocab_size = 2**13
"""
import os

import tensorflow as tf

from t2t_lite import errors
from t2t_lite import registry
from t2t_lite.data.text_problems import VocabType
from t2t_lite.data.translate import TranslateProblem


@registry.register_problem
class Text2textTmpdir(TranslateProblem):
  """Your own pairs of texts: --tmp_dir's inputs/targets.{train,eval}.txt, one example a line.

  A shared SentencePiece vocabulary of 8192 pieces with byte fallback (a character it has no
  piece for is spelt as its UTF-8 bytes, so names and rare characters are copied through
  rather than becoming <unk>). Why not tensor2tensor's 32k subwords (text2text_tmpdir_subwords):
  on a corpus of ~50k pairs 32k ids fragment names into rare pieces and make the softmax the
  dearest part of a step; `python -m benchmarks.translate` measures the choice. For corpora of
  millions of pairs, subclass with `approx_vocab_size = 2**15`.
  """

  vocab_type = VocabType.SENTENCEPIECE
  approx_vocab_size = 2**13
  num_train_shards = 10
  num_dev_shards = 1

  def source_data_files(self, split):
    name = "train" if split == "train" else "eval"
    return [("inputs.%s.txt" % name, "targets.%s.txt" % name)]

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    self._check_not_legacy(data_dir)
    super().generate_data(data_dir, tmp_dir, task_id)

  def get_or_create_vocab(self, data_dir, tmp_dir, force_get=False):
    self._check_not_legacy(data_dir)
    return super().get_or_create_vocab(data_dir, tmp_dir, force_get)

  def _check_not_legacy(self, data_dir):
    """A data_dir made before SentencePiece became this problem's default holds tensor2tensor's
    subwords and shards of their ids: say which problem reads it, rather than building a
    second vocabulary beside them."""
    subwords = os.path.join(data_dir or "", Text2textTmpdirSubwords.legacy_vocab_filename)
    if (data_dir and self.dataset_filename() == "text2text_tmpdir" and
        self.vocab_type != VocabType.SUBWORD and
        not tf.io.gfile.exists(os.path.join(data_dir, self.vocab_filename)) and
        tf.io.gfile.exists(subwords)):
      raise errors.ConfigError(
          "data_dir %s holds %s, tensor2tensor's 32k subword vocabulary for text2text_tmpdir "
          "(this problem's default before it became an 8k SentencePiece one): use "
          "--problem=text2text_tmpdir_subwords with this data_dir, or a new data_dir"
          % (data_dir, subwords))


@registry.register_problem
class Text2textTmpdirSubwords(Text2textTmpdir):
  """text2text_tmpdir with tensor2tensor's vocabulary: 32k subwords, its file names."""

  vocab_type = VocabType.SUBWORD
  approx_vocab_size = 2**15
  legacy_vocab_filename = "vocab.text2text_tmpdir.32768.subwords"

  def dataset_filename(self):
    return "text2text_tmpdir"  # tensor2tensor's file names for this problem


@registry.register_problem
class TranslateEndeWmt32k(TranslateProblem):
  """English -> German, tensor2tensor's WMT data (TFDS wmt_t2t_translate/de-en), 32k subwords."""

  tfds_name = "wmt_t2t_translate/de-en"
  source_language = "en"
  target_language = "de"
  tfds_split_map = {"train": "train", "dev": "validation"}
  approx_vocab_size = 2**15
  num_train_shards = 100
  num_dev_shards = 1


@registry.register_problem
class TranslateEndeWmt8k(TranslateEndeWmt32k):
  """English -> German, tensor2tensor's WMT data (TFDS wmt_t2t_translate/de-en), 8k subwords."""

  approx_vocab_size = 2**13
