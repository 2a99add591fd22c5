"""Text encoders and the text problem base classes."""
import os
import re

import numpy as np
import pytest

import problems  # noqa: F401
from t2t_lite import registry
from t2t_lite.data import ModeKeys, text_encoder
from t2t_lite.data.text_problems import Text2SelfProblem, Text2TextProblem
from t2t_lite.errors import CorruptDataError, DataNotFoundError
from t2t_lite.hparams import HParams

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine",
    "all that glitters is not gold",
    "the early bird catches the worm",
] * 20


def test_reserved_ids():
  assert text_encoder.PAD_ID == 0 and text_encoder.EOS_ID == 1


def test_text_encoder_shifts_integers():
  enc = text_encoder.TextEncoder()
  assert enc.encode("0 7") == [2, 9]
  assert enc.decode([2, 9, 1, 0]) == "0 7"


def test_byte_encoder_round_trip():
  enc = text_encoder.ByteTextEncoder()
  s = "héllo, wörld ✓"
  ids = enc.encode(s)
  assert min(ids) >= 2 and max(ids) < 258 and enc.vocab_size == 258
  assert enc.decode(ids + [1, 0, 0]) == s


def test_symbol_encoder_names():
  enc = text_encoder.SymbolEncoder(3, ["0", "1", "+"])
  assert enc.encode("1 + 0") == [3, 4, 2]
  assert enc.decode([3, 4, 2, 1]) == "1 + 0"
  with pytest.raises(ValueError, match="not a symbol"):
    enc.encode("7")


def test_token_encoder_file_round_trip(tmp_path):
  enc = text_encoder.TokenTextEncoder.build_from_corpus(CORPUS, max_vocab_size=30)
  assert enc.vocab_size <= 30
  path = str(tmp_path / "vocab.tokens")
  enc.store_to_file(path)
  enc2 = text_encoder.TokenTextEncoder(path, replace_oov="<UNK>")
  assert enc2.vocab_size == enc.vocab_size
  ids = enc2.encode("the lazy dog")
  assert min(ids) >= 2
  assert enc2.decode(ids + [1]) == "the lazy dog"
  assert enc2.decode(enc2.encode("the zebra")) == "the <UNK>"


def test_subword_encoder_build_save_load_round_trip(tmp_path):
  enc = text_encoder.SubwordTextEncoder.build_from_corpus(CORPUS, target_vocab_size=300)
  s = "the quick dog catches gold"
  ids = enc.encode(s)
  assert min(ids) >= 2  # 0 and 1 stay reserved
  assert enc.decode(ids + [1, 0]) == s
  prefix = str(tmp_path / "vocab.x")
  enc.store_to_file(prefix)
  assert os.path.exists(prefix + ".subwords")
  enc2 = text_encoder.SubwordTextEncoder(prefix)
  assert enc2.encode(s) == ids and enc2.vocab_size == enc.vocab_size
  assert enc2.decode(enc2.encode("unseen words zq")) == "unseen words zq"


@pytest.mark.parametrize("reserved", [text_encoder.RESERVED_TOKENS + ("<S>", "<E>"),
                                      ["<S>", "<E>"]])
def test_subword_extra_reserved_tokens_get_ids_2_3_in_order(reserved, tmp_path):
  # tensor2tensor passes RESERVED_TOKENS + extras; the extras alone mean the same. The corpus
  # holds them too, which must not move them.
  corpus = CORPUS + ["<S> the lazy fox <E>"] * 5
  enc = text_encoder.SubwordTextEncoder.build_from_corpus(corpus, 300, reserved_tokens=reserved)
  assert enc.encode("<S>") == [2] and enc.encode("<E>") == [3]
  assert enc.decode_list([2, 3]) == ["<S>", "<E>"]
  assert min(enc.encode("the quick brown fox")) >= 4
  s = "<S> the lazy dog <E>"
  assert enc.decode(enc.encode(s) + [1]) == s
  enc.store_to_file(str(tmp_path / "v"))
  again = text_encoder.SubwordTextEncoder(str(tmp_path / "v"))
  assert again.encode(s) == enc.encode(s) and again.vocab_size == enc.vocab_size


def test_extra_reserved_tokens_checks_the_order():
  assert text_encoder.extra_reserved_tokens(["<pad>", "<EOS>", "<S>"]) == ["<S>"]
  assert text_encoder.extra_reserved_tokens(None) == []
  with pytest.raises(ValueError, match="'<pad>' has id 0"):
    text_encoder.extra_reserved_tokens(["<S>", "<pad>"])
  with pytest.raises(ValueError, match="twice"):
    text_encoder.extra_reserved_tokens(["<S>", "<S>"])


# A vocabulary file as tensor2tensor's SubwordTextEncoder.store_to_file writes it: one
# subtoken a line in single quotes, reserved tokens first, then subtokens, the escape
# characters and the alphabet. A subtoken's id is its line number from 0.
T2T_SUBTOKENS = (["<pad>", "<EOS>", "the_", "cat_", "sat_", "._", "at_", "_", "\\", "u", ";"]
                 + list("0123456789") + list("acehst."))


def _t2t_vocab(path):
  with open(path, "w", encoding="utf-8") as f:
    f.writelines("'%s'\n" % s for s in T2T_SUBTOKENS)
  return str(path)


def test_tensor2tensor_vocab_file_loads_with_its_ids(tmp_path):
  enc = text_encoder.SubwordTextEncoder(_t2t_vocab(tmp_path / "vocab.old.32768.subwords"))
  assert enc.vocab_size == len(T2T_SUBTOKENS) == 28
  # Ids worked out by hand with tensor2tensor's scheme (tokenize, escape, append "_",
  # longest subtoken first).
  assert enc.encode("the cat sat.") == [2, 3, 4, 5]
  assert enc.encode("hat") == [24, 6]                        # h, at_
  assert enc.encode("\u00e9") == [8, 13, 14, 14, 10, 7]         # escaped as \233;_
  assert enc.encode("a_c") == [21, 7, 8, 9, 7, 22, 7]        # a_, \u_, c_
  for s in ("the cat sat.", "hat", "\u00e9", "a_c", "the cat"):
    assert enc.decode(enc.encode(s) + [1, 0]) == s
  assert enc.decode_list([2, 3]) == ["the_", "cat_"]
  enc.store_to_file(str(tmp_path / "copy"))
  with open(tmp_path / "copy.subwords", encoding="utf-8") as f:
    assert f.read() == "".join("'%s'\n" % s for s in T2T_SUBTOKENS)


def test_old_data_dir_vocabulary_is_used_by_the_problem(tmp_path):
  p = _Pairs()
  _t2t_vocab(tmp_path / p.vocab_filename)
  assert p.get_hparams(data_dir=str(tmp_path)).vocab_size == {"inputs": 28, "targets": 28}
  assert p.feature_encoders(str(tmp_path))["inputs"].encode("the cat") == [2, 3]


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"hello\nworld\n", b"",
                                     b"### SubwordTextEncoder\nno metadata\n'a'\n"])
def test_unreadable_vocabulary_names_the_file(content, tmp_path):
  path = tmp_path / _Pairs().vocab_filename
  path.write_bytes(content)
  with pytest.raises(CorruptDataError, match=re.escape(str(path))) as e:
    text_encoder.SubwordTextEncoder(str(path))
  assert "\n" not in str(e.value)
  with pytest.raises(CorruptDataError, match=re.escape(str(path))):
    _Pairs().get_hparams(data_dir=str(tmp_path))
  with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / "none"))):
    text_encoder.SubwordTextEncoder(str(tmp_path / "none"))


def test_sentencepiece_encoder_ids_and_file_round_trip(tmp_path):
  from t2t_lite.data.sentencepiece_encoder import SentencePieceEncoder
  assert issubclass(SentencePieceEncoder, text_encoder.TextEncoder)
  enc = SentencePieceEncoder.build_from_corpus(
      CORPUS, 80, reserved_tokens=text_encoder.RESERVED_TOKENS + ("<S>", "<E>"))
  assert enc.vocab_size <= 80
  assert enc.decode_list(range(5), strip_extraneous=False) == [
      "<pad>", "<EOS>", "<S>", "<E>", "<unk>"]
  marked = "<S> the lazy dog <E>"
  assert enc.encode(marked)[1] == 2 and enc.encode(marked)[-1] == 3  # after the "▁" piece
  assert enc.decode(enc.encode(marked)) == marked
  s = "the quick dog catches gold"
  ids = enc.encode(s)
  assert min(ids) >= 5
  assert enc.decode(ids + [1, 0, 0]) == s
  path = str(tmp_path / "vocab.x.80.sentencepiece.model")
  enc.store_to_file(path)
  again = SentencePieceEncoder(path)
  assert again.encode(s) == ids and again.vocab_size == enc.vocab_size
  bad = tmp_path / "bad.model"
  bad.write_bytes(b"not a model")
  with pytest.raises(CorruptDataError, match=re.escape(str(bad))):
    SentencePieceEncoder(str(bad))
  with pytest.raises(DataNotFoundError, match="missing.model"):
    SentencePieceEncoder(str(tmp_path / "missing.model"))


def test_class_label_encoder():
  enc = text_encoder.ClassLabelEncoder(["neg", "pos"])
  assert enc.encode("pos") == [1] and enc.decode([0]) == "neg" and enc.vocab_size == 2


class _Pairs(Text2TextProblem):
  num_train_shards = 2
  approx_vocab_size = 300

  def generate_samples(self, data_dir, tmp_dir, split):
    rows = CORPUS if split == "train" else CORPUS[:8]
    for line in rows:
      yield {"inputs": line, "targets": line.upper()}


class _PairsTokens(_Pairs):
  vocab_type = "tokens"
  approx_vocab_size = 64


class _PairsSentencePiece(_Pairs):
  vocab_type = "sentencepiece"
  approx_vocab_size = 120


class _Lm(Text2SelfProblem):
  vocab_type = "character"
  num_train_shards = 1

  def generate_samples(self, data_dir, tmp_dir, split):
    for line in CORPUS[:10]:
      yield {"targets": line}


@pytest.mark.parametrize("cls", [_Pairs, _PairsTokens, _PairsSentencePiece])
def test_text2text_problem_generates_vocab_and_data(cls, tmp_path):
  p = cls()
  d = str(tmp_path)
  with pytest.raises(DataNotFoundError, match="vocabulary"):
    p.feature_encoders(d)
  p.generate_data(d, d)
  assert p.data_exists(d)
  assert os.path.exists(os.path.join(d, p.vocab_filename))
  hp = p.get_hparams(data_dir=d)
  enc = p.feature_encoders(d)["inputs"]
  assert hp.vocab_size["inputs"] == enc.vocab_size == hp.vocab_size["targets"]
  assert "approx_bleu_score" in p.eval_metrics()
  batch = next(iter(p.dataset(ModeKeys.EVAL, d, HParams(batch_size=512, max_length=0))))
  row = batch["inputs"][0].numpy()
  assert row[(row > 0).sum() - 1] == 1  # EOS last
  text_in = enc.decode(row)
  assert text_in in CORPUS or "<UNK>" in text_in
  targets = enc.decode(batch["targets"][0].numpy())
  if cls is not _PairsTokens:
    assert targets == text_in.upper()


def test_get_hparams_reads_the_data_dir_given_whatever_came_before(tmp_path):
  """Two data_dirs with vocabularies of different sizes: each call answers for its own
  data_dir (or the model hparams'), in any order, and records it as `data_dir`."""
  p = _PairsTokens()
  dirs = {}
  for name, size in (("a", 20), ("b", 50)):
    d = str(tmp_path / name)
    os.makedirs(d)
    tokens = ["w%d" % i for i in range(size - 3)] + ["<UNK>"]
    text_encoder.TokenTextEncoder(vocab_list=tokens).store_to_file(
        os.path.join(d, p.vocab_filename))
    dirs[d] = size
  before = dict(vars(p))
  for d in list(dirs) + list(dirs)[::-1] + list(dirs):
    hp = p.get_hparams(data_dir=d)
    assert hp.vocab_size == {"inputs": dirs[d], "targets": dirs[d]}
    assert hp.data_dir == d
    from_model = p.get_hparams(HParams(data_dir=d, batch_size=512))
    assert from_model.vocab_size["inputs"] == dirs[d] and from_model.data_dir == d
  assert p.get_hparams(HParams(data_dir="elsewhere"), data_dir=d).data_dir == d
  with pytest.raises(DataNotFoundError, match="vocabulary"):  # nothing kept from before
    p.get_hparams()
  assert vars(p) == before


def test_text2self_problem_has_only_targets(tmp_path):
  p = _Lm()
  p.generate_data(str(tmp_path), None)
  hp = p.get_hparams()
  assert not hp.has_inputs and hp.vocab_size == {"targets": 258}
  batch = next(iter(p.dataset(ModeKeys.TRAIN, str(tmp_path), HParams(batch_size=256), seed=0)))
  assert set(batch) == {"targets", "targets_segmentation", "targets_position"}  # packed
  batch = next(iter(p.dataset(ModeKeys.EVAL, str(tmp_path), HParams(batch_size=256))))
  assert set(batch) == {"targets"}


def test_python_stdlib_language_model(tmp_path):
  p = registry.problem("languagemodel_python_stdlib_bytes")
  p.generate_data(str(tmp_path), None)
  counts = p.check_shards(str(tmp_path))
  assert counts["train"] > 3000 and counts["dev"] > 100
  names = sorted(os.listdir(tmp_path))
  assert names[0] == "languagemodel_python_stdlib_bytes-dev-00000-of-00001"
  ds = p.dataset(ModeKeys.TRAIN, str(tmp_path), HParams(batch_size=2048), seed=0)
  batch = next(iter(ds))["targets"].numpy()
  assert batch.shape == (8, 256)
  assert (batch[:, -1] == 1).all() and (batch[:, :-1] >= 2).all()
  text = p.feature_encoders(None)["targets"].decode(batch[0])
  assert len(text.encode("utf-8", "surrogateescape")) > 0
  # Deterministic: the same files, split and chunks every time.
  first = [b["targets"].numpy() for b in p.dataset(ModeKeys.EVAL, str(tmp_path),
                                                     HParams(batch_size=4096))]
  again = [b["targets"].numpy() for b in p.dataset(ModeKeys.EVAL, str(tmp_path),
                                                     HParams(batch_size=4096))]
  assert all(np.array_equal(a, b) for a, b in zip(first, again))
