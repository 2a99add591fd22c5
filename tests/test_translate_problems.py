"""Translation problems: text2text_tmpdir on tiny files, translate_ende_wmt8k on mocked TFDS."""
import os

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import problems  # noqa: F401
from problems.translate import Text2textTmpdir
from t2t_lite import registry
from t2t_lite.data import ModeKeys
from t2t_lite.errors import ConfigError, DataNotFoundError
from t2t_lite.hparams import HParams

TRAIN = [("the cat sat on the mat", "die katze sass auf der matte"),
         ("the dog ran", "der hund rannte"),
         ("a small house", "ein kleines haus"),
         ("the house is small", "das haus ist klein"),
         ("good morning", "guten morgen"),
         ("thank you very much", "vielen dank"),
         ("the cat is small", "die katze ist klein"),
         ("where is the dog?", "wo ist der hund?")] * 3
EVAL = [("the small cat", "die kleine katze"), ("good dog", "guter hund"),
        ("the mat is small", "die matte ist klein")]


@pytest.fixture(autouse=True)
def _no_tfds_env(monkeypatch, tmp_path):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_env"))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write_pairs(tmp_dir, train=TRAIN, dev=EVAL):
  os.makedirs(tmp_dir, exist_ok=True)
  for split, pairs in (("train", train), ("eval", dev)):
    for side, index in (("inputs", 0), ("targets", 1)):
      with open(os.path.join(tmp_dir, "%s.%s.txt" % (side, split)), "w",
                encoding="utf-8") as f:
        f.writelines(p[index] + "\n" for p in pairs)
  return str(tmp_dir)


def decoded_pairs(problem, data_dir, mode=ModeKeys.EVAL):
  enc = problem.feature_encoders(data_dir)
  out = set()
  # One example a row (training batches would be packed: tests/test_packing.py).
  for batch in problem.dataset(mode, data_dir, HParams(batch_size=4096, max_length=0,
                                                       packed_length=0),
                               shuffle=False, repeat=False):
    for inputs, targets in zip(batch["inputs"].numpy(), batch["targets"].numpy()):
      assert inputs[(inputs > 0).sum() - 1] == 1 and targets[(targets > 0).sum() - 1] == 1
      out.add((enc["inputs"].decode(inputs), enc["targets"].decode(targets)))
  return out


@pytest.mark.parametrize("name,vocab_file", [
    ("text2text_tmpdir", "vocab.text2text_tmpdir.8192.sentencepiece.model"),
    ("text2text_tmpdir_subwords", "vocab.text2text_tmpdir.32768.subwords")])
def test_text2text_tmpdir_end_to_end(tmp_path, name, vocab_file):
  p = registry.problem(name)
  assert isinstance(p, Text2textTmpdir)
  raw, data = write_pairs(tmp_path / "raw"), str(tmp_path / "data")
  assert p.check_data_files(raw) == {"train": len(TRAIN), "dev": len(EVAL)}
  p.generate_data(data, raw)
  names = sorted(os.listdir(data))
  assert vocab_file in names and not [n for n in names if n.startswith("vocab.") and
                                      n != vocab_file]
  assert "text2text_tmpdir-dev-00000-of-00001" in names
  assert sum(n.startswith("text2text_tmpdir-train-") for n in names) == 10
  assert p.check_shards(data) == {"train": len(TRAIN), "dev": len(EVAL)}
  hp = p.get_hparams(data_dir=data)
  enc = p.feature_encoders(data)
  assert enc["inputs"] is not None and hp.vocab_size["inputs"] == hp.vocab_size["targets"]
  assert hp.vocab_size["inputs"] == enc["inputs"].vocab_size
  assert decoded_pairs(p, data) == set(EVAL)
  assert decoded_pairs(p, data, ModeKeys.TRAIN) == set(TRAIN)
  p.generate_data(data, str(tmp_path / "gone"))  # complete: the sources are not needed again


def test_text2text_tmpdir_sentencepiece_round_trip(tmp_path):
  class Sp(Text2textTmpdir):
    vocab_type = "sentencepiece"
    approx_vocab_size = 64
    num_train_shards = 1
    additional_reserved_tokens = ("<S>",)

  p = Sp()
  raw, data = write_pairs(tmp_path / "raw"), str(tmp_path / "data")
  p.generate_data(data, raw)
  assert os.path.exists(os.path.join(data, p.vocab_filename))
  assert p.vocab_filename.endswith(".64.sentencepiece.model")
  enc = p.feature_encoders(data)["inputs"]
  assert enc.vocab_size <= 64 and 2 in enc.encode("<S> good dog")
  assert decoded_pairs(p, data) == set(EVAL)
  assert p.get_hparams(data_dir=data).vocab_size["targets"] == enc.vocab_size


def test_line_count_mismatch_names_both_files(tmp_path):
  raw = write_pairs(tmp_path / "raw")
  with open(os.path.join(raw, "targets.eval.txt"), "a", encoding="utf-8") as f:
    f.write("one more\n")
  p = registry.problem("text2text_tmpdir")
  data = str(tmp_path / "data")
  with pytest.raises(ConfigError) as e:
    p.generate_data(data, raw)
  msg = str(e.value)
  assert "inputs.eval.txt has 3 lines" in msg and "targets.eval.txt has 4" in msg
  assert "\n" not in msg
  assert not os.path.exists(data) or not os.listdir(data)  # nothing written


def test_empty_corpus_and_missing_file(tmp_path):
  p = registry.problem("text2text_tmpdir")
  raw = write_pairs(tmp_path / "raw", train=[])
  with pytest.raises(ConfigError, match="the train split is empty .*inputs.train.txt"):
    p.generate_data(str(tmp_path / "data"), raw)
  os.remove(os.path.join(raw, "targets.eval.txt"))
  with pytest.raises(DataNotFoundError, match="targets.eval.txt does not exist.*--tmp_dir"):
    p.check_data_files(raw, ["dev"])


def test_not_utf8_is_named(tmp_path):
  raw = write_pairs(tmp_path / "raw")
  with open(os.path.join(raw, "inputs.train.txt"), "ab") as f:
    f.write(b"caf\xe9\n")
  with open(os.path.join(raw, "targets.train.txt"), "a", encoding="utf-8") as f:
    f.write("cafe\n")
  with pytest.raises(ConfigError, match="inputs.train.txt is not UTF-8"):
    registry.problem("text2text_tmpdir").check_data_files(raw)


def _fake_wmt(self, split, **kwargs):
  """The mocked TFDS wmt_t2t_translate/de-en: known English -> German pairs per split."""
  del self, kwargs
  pairs = EVAL if "validation" in str(split) else TRAIN
  return tf.data.Dataset.from_tensor_slices({"de": [d for _, d in pairs],
                                             "en": [e for e, _ in pairs]})


def test_translate_ende_wmt8k_on_mocked_tfds(tmp_path):
  p = registry.problem("translate_ende_wmt8k")
  assert p.approx_vocab_size == 8192
  assert registry.problem("translate_ende_wmt32k").approx_vocab_size == 32768
  data = str(tmp_path / "data")
  with tfds.testing.mock_data(as_dataset_fn=_fake_wmt):
    p.generate_data(data, str(tmp_path / "tmp"))
  names = os.listdir(data)
  assert "vocab.translate_ende_wmt8k.8192.subwords" in names
  assert sum(n.startswith("translate_ende_wmt8k-train-") for n in names) == 100
  assert decoded_pairs(p, data) == set(EVAL)  # inputs English, targets German
  assert "approx_bleu_score" in p.eval_metrics()


def test_translate_ende_wmt8k_random_mock_data(tmp_path):
  p = registry.problem("translate_ende_wmt8k")
  data = str(tmp_path / "data")
  with tfds.testing.mock_data(num_examples=6):
    samples = list(p.generate_samples(data, None, "dev"))
    p.generate_data(data, str(tmp_path / "tmp"))
  assert len(samples) == 6 and all(set(s) == {"inputs", "targets"} for s in samples)
  assert decoded_pairs(p, data) == {(s["inputs"], s["targets"]) for s in samples}


def test_translate_ende_without_tfds_data_says_how_to_prepare(tmp_path):
  p = registry.problem("translate_ende_wmt32k")
  with pytest.raises(DataNotFoundError) as e:
    list(p.generate_samples(str(tmp_path), None, "train"))
  msg = str(e.value)
  assert "'wmt_t2t_translate/de-en'" in msg and "tfds build wmt_t2t_translate/de-en" in msg


def test_text2text_tmpdir_sentencepiece_default_keeps_unseen_characters(tmp_path):
  """The default vocabulary spells what it has no piece for in bytes: nothing becomes <unk>."""
  p = registry.problem("text2text_tmpdir")
  raw, data = write_pairs(tmp_path / "raw"), str(tmp_path / "data")
  p.generate_data(data, raw)
  enc = p.feature_encoders(data)["inputs"]
  text = "Zoë Ångström 東京"
  assert enc.decode(enc.encode(text)) == text


def test_text2text_tmpdir_names_the_legacy_subword_data_dir(tmp_path):
  """A data_dir made with the 32k subwords (the old default) is not silently given a second
  vocabulary: the error names the problem that reads it, and that problem does."""
  raw, data = write_pairs(tmp_path / "raw"), str(tmp_path / "data")
  legacy = registry.problem("text2text_tmpdir_subwords")
  legacy.generate_data(data, raw)
  before = sorted(os.listdir(data))
  default = registry.problem("text2text_tmpdir")
  for use in (lambda: default.generate_data(data, raw), lambda: default.feature_encoders(data)):
    with pytest.raises(ConfigError, match="--problem=text2text_tmpdir_subwords"):
      use()
  assert sorted(os.listdir(data)) == before
  assert decoded_pairs(legacy, data) == set(EVAL)
