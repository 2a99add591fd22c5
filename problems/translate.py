"""Translation problems (see `t2t_lite.data.translate.TranslateProblem`).

- `text2text_tmpdir`: your own parallel text, no code: --tmp_dir holds inputs.train.txt,
  targets.train.txt, inputs.eval.txt and targets.eval.txt, one example a line (line n of a
  targets file is the output for line n of its inputs file). t2t-datagen checks the line
  counts, builds a 32k subword vocabulary shared by inputs and targets
  (`vocab.text2text_tmpdir.32768.subwords`), and writes 10 train shards and 1 dev shard.
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
from t2t_lite import registry
from t2t_lite.data.translate import TranslateProblem


@registry.register_problem
class Text2textTmpdir(TranslateProblem):
  """Your own pairs of texts: --tmp_dir's inputs/targets.{train,eval}.txt, one example a line.

  A shared 32k subword vocabulary, as tensor2tensor's text2text_tmpdir.
  """

  num_train_shards = 10
  num_dev_shards = 1

  def source_data_files(self, split):
    name = "train" if split == "train" else "eval"
    return [("inputs.%s.txt" % name, "targets.%s.txt" % name)]


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
