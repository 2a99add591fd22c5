"""Text encoders: strings <-> lists of int ids, with ids 0 (PAD) and 1 (EOS) reserved.

Every encoder has `encode(str) -> list[int]`, `decode(list[int]) -> str` (which stops at
nothing: PAD and EOS ids decode to nothing, so `decode(encode(s) + [EOS_ID]) == s`),
`decode_list(ids) -> list[str]` and `vocab_size`. Encoders never append EOS themselves;
problems do, when they write their data.

- `TextEncoder`: space-separated integers, shifted past the reserved ids ("3 4" -> [5, 6]).
- `ByteTextEncoder`: UTF-8 bytes (vocab_size 258).
- `TokenTextEncoder`: whitespace tokens from a vocabulary file (one token a line) or a list.
- `SubwordTextEncoder`: wraps `tfds.deprecated.text.SubwordTextEncoder` (ids shifted by one
  so that 1 is EOS), built from a corpus for a target vocabulary size; also reads
  tensor2tensor's own vocabulary files (`t2t_lite.data.subword_vocab`).
- `t2t_lite.data.sentencepiece_encoder.SentencePieceEncoder` (needs `sentencepiece`): a
  SentencePiece model, much faster to build than subwords. It is a `TextEncoder` and lives
  in its own module, which imports this one (never the reverse).
- `ClassLabelEncoder`: class names <-> a single class id (no reserved ids).

Vocabulary files are read and written through `tf.io.gfile`.

    enc = SubwordTextEncoder.build_from_corpus(lines, target_vocab_size=2**13)
    enc.store_to_file("/data/vocab.my_problem.8192")   # writes ....subwords
    enc = SubwordTextEncoder("/data/vocab.my_problem.8192")
    enc.decode(enc.encode("hello world")) == "hello world"
"""
import collections

import tensorflow as tf

# The reserved tokens are defined in t2t_lite.constants; re-exported here (tensor2tensor's home).
from t2t_lite.constants import EOS  # noqa: F401  pylint: disable=unused-import
from t2t_lite.constants import EOS_ID  # noqa: F401  pylint: disable=unused-import
from t2t_lite.constants import NUM_RESERVED_TOKENS
from t2t_lite.constants import PAD  # noqa: F401  pylint: disable=unused-import
from t2t_lite.constants import PAD_ID  # noqa: F401  pylint: disable=unused-import
from t2t_lite.constants import RESERVED_TOKENS
from t2t_lite.data import subword_vocab
from t2t_lite.data.subword_vocab import extra_reserved_tokens  # noqa: F401  (re-exported)


def _strip_reserved(ids):
  return [int(i) for i in ids if int(i) >= NUM_RESERVED_TOKENS]


def decode_tokens(ids, strip_extraneous, token, num_reserved_ids=NUM_RESERVED_TOKENS):
  """The strings of `ids`, as every encoder's `decode_list` gives them: `token(i)` for an id
  at or above num_reserved_ids; a reserved id by its name ("<pad>", "<EOS>", or the number of
  an extra reserved id), or nothing when `strip_extraneous`."""
  out = []
  for i in map(int, ids):
    if i < num_reserved_ids:
      if not strip_extraneous:
        out.append(RESERVED_TOKENS[i] if i < NUM_RESERVED_TOKENS else str(i))
    else:
      out.append(token(i))
  return out


class TextEncoder:
  """Space-separated integers shifted by the reserved ids: "0 7" <-> [2, 9].

  Args:
    num_reserved_ids: ids below this are reserved (PAD=0, EOS=1).
    vocab_size: the size of the id space, when known (None otherwise).
  """

  def __init__(self, num_reserved_ids=NUM_RESERVED_TOKENS, vocab_size=None):  # noqa: D107
    self._num_reserved_ids = num_reserved_ids
    self._vocab_size = vocab_size

  @property
  def num_reserved_ids(self):
    return self._num_reserved_ids

  def encode(self, s):
    return [int(w) + self._num_reserved_ids for w in s.split()]

  def decode(self, ids, strip_extraneous=True):
    """Ids to a string; reserved ids (PAD, EOS) are dropped when `strip_extraneous`."""
    return " ".join(self.decode_list(ids, strip_extraneous))

  def decode_list(self, ids, strip_extraneous=True):
    return decode_tokens(ids, strip_extraneous, lambda i: str(i - self._num_reserved_ids),
                         self._num_reserved_ids)

  @property
  def vocab_size(self):
    if self._vocab_size is None:
      raise NotImplementedError("%s has no fixed vocab_size" % type(self).__name__)
    return self._vocab_size


class SymbolEncoder(TextEncoder):
  """`num_symbols` symbols written as space-separated tokens (algorithmic problems).

  Symbol k has id k + 2 and is written as `str(k)`, or as `symbols[k]` when names are given.
  encode("1 0 1") == [3, 2, 3]; decode([3, 2, 3, 1]) == "1 0 1".

  Args:
    num_symbols: how many symbols.
    symbols: optional names of the symbols (e.g. "+" for a separator), in id order.
  """

  def __init__(self, num_symbols, symbols=None):
    super().__init__(vocab_size=num_symbols + NUM_RESERVED_TOKENS)
    self.num_symbols = num_symbols
    if symbols is None:
      symbols = [str(k) for k in range(num_symbols)]
    if len(symbols) != num_symbols:
      raise ValueError("%d symbol names for %d symbols" % (len(symbols), num_symbols))
    self._names = list(symbols)
    self._ids = {name: k + NUM_RESERVED_TOKENS for k, name in enumerate(self._names)}

  def encode(self, s):
    ids = []
    for tok in s.split():
      i = self._ids.get(tok)
      if i is None:
        raise ValueError("%r is not a symbol of this problem (symbols: %s)"
                         % (tok, " ".join(self._names[:12]) +
                            (" ..." if len(self._names) > 12 else "")))
      ids.append(i)
    return ids

  def decode_list(self, ids, strip_extraneous=True):
    def name(i):
      k = i - NUM_RESERVED_TOKENS
      return self._names[k] if k < self.num_symbols else "<%d?>" % i
    return decode_tokens(ids, strip_extraneous, name)


class ByteTextEncoder(TextEncoder):
  """UTF-8 bytes shifted by 2: vocab_size 258. Undecodable bytes become U+FFFD."""

  def __init__(self):
    super().__init__(vocab_size=256 + NUM_RESERVED_TOKENS)

  def encode(self, s):
    if isinstance(s, str):
      s = s.encode("utf-8")
    return [b + NUM_RESERVED_TOKENS for b in s]

  def decode(self, ids, strip_extraneous=True):
    del strip_extraneous
    return bytes(i - NUM_RESERVED_TOKENS for i in _strip_reserved(ids)
                 if i < 256 + NUM_RESERVED_TOKENS).decode("utf-8", "replace")

  def decode_list(self, ids, strip_extraneous=True):
    return decode_tokens(ids, strip_extraneous, lambda i: chr(i - NUM_RESERVED_TOKENS))


class TokenTextEncoder(TextEncoder):
  """Whitespace-separated tokens looked up in a vocabulary.

  The vocabulary file has one token a line; its first two lines are `<pad>` and `<EOS>`
  (added in front when missing, so ids 0 and 1 stay reserved).

  Args:
    vocab_filename: a vocabulary file (read through tf.io.gfile), or None.
    vocab_list: the tokens, used when no file is given.
    replace_oov: a token (in the vocabulary) that unknown tokens map to; None raises on
      an unknown token.
  """

  def __init__(self, vocab_filename=None, vocab_list=None, replace_oov=None):
    super().__init__()
    if vocab_filename is not None:
      with tf.io.gfile.GFile(vocab_filename, "r") as f:
        vocab_list = [line.rstrip("\r\n") for line in f]
      while vocab_list and not vocab_list[-1]:
        vocab_list.pop()
    if vocab_list is None:
      raise ValueError("TokenTextEncoder needs vocab_filename or vocab_list")
    tokens = list(vocab_list)
    if tuple(tokens[:NUM_RESERVED_TOKENS]) != RESERVED_TOKENS:
      tokens = list(RESERVED_TOKENS) + [t for t in tokens if t not in RESERVED_TOKENS]
    self._id_to_token = tokens
    self._token_to_id = {t: i for i, t in enumerate(tokens)}
    self._replace_oov = replace_oov
    if replace_oov is not None and replace_oov not in self._token_to_id:
      raise ValueError("replace_oov token %r is not in the vocabulary" % replace_oov)

  @classmethod
  def build_from_corpus(cls, lines, max_vocab_size=None, replace_oov="<UNK>"):
    """A vocabulary of the most frequent whitespace tokens of `lines` (ties: first seen)."""
    counts = collections.Counter()
    for line in lines:
      counts.update(line.split())
    room = None if max_vocab_size is None else max_vocab_size - NUM_RESERVED_TOKENS - 1
    tokens = [t for t, _ in counts.most_common(room)]
    if replace_oov is not None and replace_oov not in tokens:
      tokens.append(replace_oov)
    return cls(vocab_list=tokens, replace_oov=replace_oov)

  def encode(self, s):
    ids = []
    for tok in s.split():
      i = self._token_to_id.get(tok)
      if i is None:
        if self._replace_oov is None:
          raise ValueError("token %r is not in the vocabulary" % tok)
        i = self._token_to_id[self._replace_oov]
      ids.append(i)
    return ids

  def decode_list(self, ids, strip_extraneous=True):
    # The vocabulary's first tokens are RESERVED_TOKENS: its reserved ids' names.
    return decode_tokens(ids, strip_extraneous, lambda i: (
        self._id_to_token[i] if i < len(self._id_to_token) else "<%d?>" % i))

  @property
  def vocab_size(self):
    return len(self._id_to_token)

  def store_to_file(self, filename):
    """Writes the vocabulary, one token a line."""
    with tf.io.gfile.GFile(filename, "w") as f:
      for tok in self._id_to_token:
        f.write(tok + "\n")


class SubwordTextEncoder(TextEncoder):
  """Subword units (tensor2tensor's invertible subword scheme, through TFDS).

  A thin wrapper of `tfds.deprecated.text.SubwordTextEncoder`: TFDS reserves only 0 (padding),
  so every TFDS id is shifted up by one here, making 1 the EOS id; `vocab_size` is TFDS's
  plus one. Extra reserved tokens (`build_from_corpus(reserved_tokens=...)`) get ids 2, 3, ...
  in order and are never split.

  A vocabulary file of tensor2tensor's SubwordTextEncoder (one quoted subtoken a line,
  `'<pad>'` and `'<EOS>'` first) loads too, encoded with tensor2tensor's scheme and ids
  (`t2t_lite.data.subword_vocab`): an old data_dir's vocabulary, shards and checkpoints agree.

  Args:
    filename_prefix: load a vocabulary file: `<prefix>.subwords` as `store_to_file` writes
      it, or the file itself; None to wrap `tfds_encoder`.
    tfds_encoder: an existing `tfds.deprecated.text.SubwordTextEncoder`.

  Raises:
    DataNotFoundError: the file does not exist.
    CorruptDataError: the file is not a subword vocabulary (the message names it).
  """

  def __init__(self, filename_prefix=None, tfds_encoder=None):
    super().__init__()
    self._t2t = None
    if filename_prefix is not None:
      kind, subwords, filename = subword_vocab.read_subword_file(filename_prefix)
      if kind == "t2t":
        self._t2t = subword_vocab.T2TSubwords(subwords, filename)
      else:
        tfds_encoder = _tfds_text().SubwordTextEncoder(vocab_list=subwords)
    if tfds_encoder is None and self._t2t is None:
      raise ValueError("SubwordTextEncoder needs filename_prefix or tfds_encoder")
    self._enc = tfds_encoder

  @classmethod
  def build_from_corpus(cls, corpus, target_vocab_size, max_subword_length=20,
                        max_corpus_chars=None, reserved_tokens=None):
    """Builds a vocabulary of about `target_vocab_size` ids from an iterable of strings.

    Args:
      corpus: an iterable of strings.
      target_vocab_size: the approximate number of ids.
      max_subword_length: the longest subword considered.
      max_corpus_chars: read at most this many characters of the corpus.
      reserved_tokens: tokens given ids 2, 3, ... in order, either the extra ones alone or
        after PAD and EOS, as tensor2tensor passes them (`RESERVED_TOKENS + ["<S>", "<E>"]`).
        TFDS requires each to mix letters or digits with other characters and not to end
        with "_".
    """
    tfds_text = _tfds_text()
    extra = subword_vocab.extra_reserved_tokens(reserved_tokens)
    enc = tfds_text.SubwordTextEncoder.build_from_corpus(
        corpus, target_vocab_size=max(target_vocab_size - 1, 260),
        max_subword_length=max_subword_length, max_corpus_chars=max_corpus_chars,
        reserved_tokens=extra)
    learned = enc.subwords[len(extra):]
    if any(s in extra for s in learned):  # the corpus held a reserved token: keep its first id
      enc = tfds_text.SubwordTextEncoder(vocab_list=extra + [s for s in learned
                                                             if s not in extra])
    return cls(tfds_encoder=enc)

  @property
  def tfds_encoder(self):
    """The wrapped TFDS encoder (None for a tensor2tensor vocabulary file)."""
    return self._enc

  def encode(self, s):
    if isinstance(s, bytes):
      s = s.decode("utf-8")
    if self._t2t is not None:
      return self._t2t.encode(s)
    return [i + 1 for i in self._enc.encode(s)]

  def decode(self, ids, strip_extraneous=True):
    del strip_extraneous
    if self._t2t is not None:
      return self._t2t.decode(_strip_reserved(ids))
    return self._enc.decode([i - 1 for i in _strip_reserved(ids) if i - 1 < self._enc.vocab_size])

  def decode_list(self, ids, strip_extraneous=True):
    if self._t2t is not None:
      return [self._t2t.subtokens[i] if i < len(self._t2t.subtokens) else "<%d?>" % i
              for i in map(int, ids) if i >= NUM_RESERVED_TOKENS or not strip_extraneous]
    subwords = self._enc.subwords

    def subword(i):
      j = i - 2  # tfds id i-1; its subwords start at tfds id 1
      return subwords[j] if j < len(subwords) else self._enc.decode([i - 1])
    return decode_tokens(ids, strip_extraneous, subword)

  @property
  def vocab_size(self):
    if self._t2t is not None:
      return self._t2t.vocab_size
    return self._enc.vocab_size + 1

  def store_to_file(self, filename_prefix):
    """Writes `<filename_prefix>.subwords` (through tf.io.gfile), in the format it was read."""
    if filename_prefix.endswith(".subwords"):
      filename_prefix = filename_prefix[:-len(".subwords")]
    if self._t2t is not None:
      self._t2t.store_to_file(filename_prefix + ".subwords")
    else:
      self._enc.save_to_file(filename_prefix)


class ClassLabelEncoder(TextEncoder):
  """Class names <-> one class id (targets of classification problems; no reserved ids).

  Args:
    class_labels: the class names, in id order.
  """

  def __init__(self, class_labels):
    super().__init__(num_reserved_ids=0, vocab_size=len(class_labels))
    self._labels = list(class_labels)

  def encode(self, s):
    s = s.strip()
    if s in self._labels:
      return [self._labels.index(s)]
    return [int(s)]

  def decode(self, ids, strip_extraneous=False):
    del strip_extraneous
    ids = list(ids) if not isinstance(ids, int) else [ids]
    if len(ids) != 1:
      raise ValueError("ClassLabelEncoder decodes one id, got %r" % (ids,))
    return self._labels[int(ids[0])]

  def decode_list(self, ids, strip_extraneous=False):
    return [self._labels[int(i)] for i in ids]

  @property
  def class_labels(self):
    return list(self._labels)


class ImageEncoder:
  """Images are not text: a placeholder with the image shape, for `feature_encoders`."""

  def __init__(self, height, width, channels=1):
    self.shape = (height, width, channels)
    self.vocab_size = 256

  def encode(self, s):
    raise NotImplementedError("images are read from files, not encoded from text")

  def decode(self, ids):
    return "<image %s>" % "x".join(str(d) for d in self.shape)


def _tfds_text():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.deprecated.text
