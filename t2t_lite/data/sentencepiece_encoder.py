"""`SentencePieceEncoder`: a SentencePiece vocabulary (the `sentencepiece` package).

SentencePiece (as Model Garden, T5 and Llama use it) builds a vocabulary of a given size from
raw sentences in about a second where the pure-Python subword builder takes minutes on a
large corpus (`python -m benchmarks.vocab` measures both). The model is BPE by default
(`model_type="unigram"` is T5's kind, much slower to train). It keeps t2t_lite's reserved ids:

    0 <pad>   1 <EOS>   2, 3, ... extra reserved tokens, in order   then <unk>, then pieces

(no BOS). SentencePiece marks the start of the text and each space with "▁", which a
reserved token does not absorb: `encode("<S> hello")` is [the id of "▁", 2, ...]. A model
trained elsewhere loads when its pad id is 0 and its EOS id 1, as T5's are. With
`byte_fallback` (the default from 4096 ids up), a character the model does not know is
encoded as its UTF-8 bytes, so every string round-trips; below that, it becomes `<unk>`. The
text is NFKC-normalised and runs of spaces collapse (SentencePiece's `nmt_nfkc`), so
`decode(encode(s))` is `s` for text that is already so.

    enc = SentencePieceEncoder.build_from_corpus(lines, target_vocab_size=8192)
    enc.store_to_file("/data/vocab.my_problem.8192.sentencepiece.model")
    enc = SentencePieceEncoder("/data/vocab.my_problem.8192.sentencepiece.model")
    enc.decode(enc.encode("hello world")) == "hello world"

`encode_tf` / `decode_tf` do the same in TensorFlow ops, through tensorflow-text's
SentencePiece op (the same SentencePiece library, so the same ids), so a problem with this
vocabulary exports as a strings-in/strings-out SavedModel (`t2t-decoder
--export_saved_model`) that t2t-serve and TensorFlow Serving serve. tensorflow-text is not a
dependency (each release is built for one TensorFlow version): without it that export is a
one-line error saying which release to install; the features -> logits export needs nothing.
"""
import io
import os

import tensorflow as tf

from t2t_lite import errors
from t2t_lite.constants import EOS, EOS_ID, NUM_RESERVED_TOKENS, PAD, PAD_ID
from t2t_lite.data import subword_vocab
from t2t_lite.data.text_encoder import TextEncoder, decode_tokens
from t2t_lite.utils import tensorflow_text as tensorflow_text_lib

UNK = "<unk>"
BYTE_FALLBACK_MIN_VOCAB = 4096


def _sentencepiece():
  try:
    import sentencepiece  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.ConfigError("vocab_type sentencepiece needs the sentencepiece package: "
                             "pip install sentencepiece") from None
  return sentencepiece


class SentencePieceEncoder(TextEncoder):
  """A SentencePiece model with PAD 0 and EOS 1 (see the module docstring).

  Args:
    model_file: a `.model` file (read through tf.io.gfile).
    model_proto: the model's serialized bytes, instead of a file.

  Raises:
    DataNotFoundError: the file does not exist.
    CorruptDataError: it is not a SentencePiece model, or its pad/EOS ids are not 0 and 1
      (the message names the file).
  """

  def __init__(self, model_file=None, model_proto=None):
    super().__init__()
    spm = _sentencepiece()
    name = model_file or "the SentencePiece model"
    if model_file is not None:
      try:
        with tf.io.gfile.GFile(model_file, "rb") as f:
          model_proto = f.read()
      except tf.errors.NotFoundError:
        raise errors.DataNotFoundError("the SentencePiece model %s does not exist"
                                       % model_file) from None
      except (tf.errors.OpError, OSError) as e:
        raise errors.CorruptDataError("the SentencePiece model %s cannot be read: %s"
                                      % (model_file, getattr(e, "message", None) or e)
                                      ) from None
    if model_proto is None:
      raise ValueError("SentencePieceEncoder needs model_file or model_proto")
    self._proto = bytes(model_proto)
    try:
      self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.CorruptDataError("%s is not a SentencePiece model (%s)"
                                    % (name, str(e).splitlines()[0][:200] if str(e) else
                                       type(e).__name__)) from None
    if self._sp.pad_id() != PAD_ID or self._sp.eos_id() != EOS_ID:
      raise errors.CorruptDataError(
          "%s has pad id %d and EOS id %d; t2t_lite needs %d and %d (train it with "
          "--pad_id=%d --eos_id=%d, as SentencePieceEncoder.build_from_corpus does)"
          % (name, self._sp.pad_id(), self._sp.eos_id(), PAD_ID, EOS_ID, PAD_ID, EOS_ID))

  @classmethod
  def build_from_corpus(cls, corpus, target_vocab_size, reserved_tokens=None,
                        model_type="bpe", byte_fallback=None, num_threads=None,
                        **trainer_options):
    """Trains a model of (at most) `target_vocab_size` pieces on the lines of `corpus`.

    Args:
      corpus: an iterable of strings (one sentence each; bytes are decoded as UTF-8).
      target_vocab_size: the number of ids; a corpus too small for it gives fewer.
      reserved_tokens: tokens given ids 2, 3, ... in order (never split), either the extra
        ones alone or after PAD and EOS, as tensor2tensor passes them.
      model_type: "bpe" (as Llama's SentencePiece models; the default here) or "unigram"
        (SentencePiece's own default, T5's). On the 113k English and German lines of
        `benchmarks.vocab`, at 8192 ids, BPE trained in 0.5 s and cut held-out sentences
        into 13.2 ids on average; unigram took 9 s of CPU (its seed-piece extraction) for
        13.8 ids.
      byte_fallback: encode unknown characters as bytes (default: from 4096 ids up; the
        256 byte pieces count in the vocabulary).
      num_threads: training threads (default: the machine's cores, at most 16).
      **trainer_options: more `spm.SentencePieceTrainer` options (e.g. character_coverage).

    Raises:
      ConfigError: SentencePiece could not train on this corpus (its reason given).
    """
    spm = _sentencepiece()
    extra = subword_vocab.extra_reserved_tokens(reserved_tokens)
    if any("," in t for t in extra):
      raise ValueError("SentencePiece reserved tokens cannot contain ',': %r" % (extra,))
    if byte_fallback is None:
      byte_fallback = target_vocab_size >= BYTE_FALLBACK_MIN_VOCAB

    def sentences():
      for line in corpus:
        yield line.decode("utf-8", "replace") if isinstance(line, bytes) else line

    options = dict(
        model_type=model_type, vocab_size=int(target_vocab_size), hard_vocab_limit=False,
        pad_id=PAD_ID, pad_piece=PAD, eos_id=EOS_ID, eos_piece=EOS, bos_id=-1,
        unk_id=NUM_RESERVED_TOKENS + len(extra), unk_piece=UNK, byte_fallback=byte_fallback,
        num_threads=num_threads or min(os.cpu_count() or 1, 16), minloglevel=2)
    if extra:
      options["user_defined_symbols"] = extra
    options.update(trainer_options)
    model = io.BytesIO()
    try:
      spm.SentencePieceTrainer.train(sentence_iterator=sentences(), model_writer=model,
                                     **options)
    except RuntimeError as e:
      raise errors.ConfigError("SentencePiece could not build a %d-piece vocabulary from this "
                               "corpus: %s" % (target_vocab_size, str(e).strip()[:300])
                               ) from None
    return cls(model_proto=model.getvalue())

  def tf_resources(self):
    """The TensorFlow objects `encode_tf` / `decode_tf` use (a SavedModel must track them):
    one tensorflow-text SentencepieceTokenizer, made on the first call, outside any graph.

    Raises:
      ConfigError: tensorflow-text is not installed, or not for this TensorFlow.
    """
    if getattr(self, "_tf_tokenizer", None) is None:
      tensorflow_text = tensorflow_text_lib.import_tensorflow_text(
          "a SentencePiece vocabulary in TensorFlow ops (a strings-in/strings-out SavedModel)")
      with tf.init_scope():  # a resource of the SavedModel, not of a traced function
        self._tf_tokenizer = tensorflow_text.SentencepieceTokenizer(
            model=self._proto, out_type=tf.int32)
    return [self._tf_tokenizer]

  def encode_tf(self, strings):
    """strings [B] -> int32 ragged [B, None], as `encode` (no EOS)."""
    return self.tf_resources()[0].tokenize(strings)

  def decode_tf(self, ids):
    """int ragged [..., None] -> strings [...], as `decode`: reserved ids and ids outside
    the vocabulary are left out."""
    ids = tf.cast(ids, tf.int32)
    keep = (ids >= NUM_RESERVED_TOKENS) & (ids < self.vocab_size)
    return self.tf_resources()[0].detokenize(tf.ragged.boolean_mask(ids, keep))

  @property
  def model_proto(self):
    """The serialized model (what `store_to_file` writes)."""
    return self._proto

  def encode(self, s):
    if isinstance(s, bytes):
      s = s.decode("utf-8")
    return list(self._sp.encode(s))

  def decode(self, ids, strip_extraneous=True):
    del strip_extraneous
    size = self.vocab_size
    return self._sp.decode([i for i in map(int, ids) if NUM_RESERVED_TOKENS <= i < size])

  def decode_list(self, ids, strip_extraneous=True):
    size = self.vocab_size
    return decode_tokens(ids, strip_extraneous, lambda i: (
        self._sp.id_to_piece(i) if i < size else "<%d?>" % i))

  @property
  def vocab_size(self):
    return self._sp.get_piece_size()

  def store_to_file(self, filename):
    """Writes the model to `filename` (through tf.io.gfile)."""
    with tf.io.gfile.GFile(filename, "wb") as f:
      f.write(self._proto)
