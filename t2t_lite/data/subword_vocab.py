"""Subword vocabulary files: reading both formats, and tensor2tensor's own encoding scheme.

`text_encoder.SubwordTextEncoder` reads a vocabulary file through `read_subword_file`, which
tells the two formats apart by their first line:

- TFDS's (what t2t_lite writes): `### SubwordTextEncoder`, a `### Metadata: {...}` line, then
  one subword a line in single quotes. Encoded by `tfds.deprecated.text.SubwordTextEncoder`.
- tensor2tensor's (`SubwordTextEncoder.store_to_file`, what an old data_dir holds): one
  subtoken a line, usually in single quotes (`'the_'`), the first two being `'<pad>'` and
  `'<EOS>'` (then any extra reserved tokens); a subtoken's id is its line number from 0.
  Encoded here by `T2TSubwords`, which follows tensor2tensor's scheme so that ids match the
  shards and checkpoints made with it (TFDS's scheme differs: it byte-encodes a character
  outside the vocabulary where tensor2tensor escapes it, and splits tokens differently).

tensor2tensor's scheme, for a string:

1. split it into runs of letters and digits (Unicode categories L* and N*) and runs of other
   characters, leaving out a single space between two letter/digit runs;
2. escape each token ("\\" -> "\\\\", "_" -> "\\u", a newline or a character missing from the
   vocabulary's alphabet -> "\\<code point>;") and end it with "_";
3. split each escaped token, left to right, into the longest subtokens of the vocabulary.

Decoding joins the subtokens, cuts at every "_", unescapes each piece and puts a space between
two adjacent letter/digit tokens.

Anything else (a missing file, bytes that are not UTF-8, neither header) raises a
`T2TUserError` naming the file.

`extra_reserved_tokens` says which reserved tokens get ids 2, 3, ... (the subword and
SentencePiece builders share it).
"""
import functools
import re
import unicodedata

import tensorflow as tf

from t2t_lite import errors
from t2t_lite.constants import NUM_RESERVED_TOKENS, RESERVED_TOKENS

TFDS_HEADER = "### SubwordTextEncoder"
TFDS_METADATA_PREFIX = "### Metadata: "
ESCAPE_CHARS = frozenset("\\_u;0123456789")
_UNESCAPE_RE = re.compile(r"\\u|\\\\|\\([0-9]+);")
_CACHE_LIMIT = 2**20


def read_subword_file(path):
  """Reads a subword vocabulary file.

  Args:
    path: the file (or a TFDS prefix: `path + ".subwords"` is tried when `path` is missing).

  Returns:
    (format, subwords, filename): format "tfds" (subwords without the padding id) or "t2t"
    (every subtoken, reserved ones included, in id order), and the file read.

  Raises:
    DataNotFoundError: no such file.
    CorruptDataError: the file cannot be read or is not a subword vocabulary.
  """
  filename = path
  if not tf.io.gfile.exists(filename) and tf.io.gfile.exists(path + ".subwords"):
    filename = path + ".subwords"
  try:
    with tf.io.gfile.GFile(filename, "rb") as f:
      data = f.read()
  except tf.errors.NotFoundError:
    raise errors.DataNotFoundError("the subword vocabulary file %s does not exist%s" % (
        path, "" if path.endswith(".subwords") else " (nor %s.subwords)" % path)) from None
  except (tf.errors.OpError, OSError) as e:
    raise errors.CorruptDataError("the subword vocabulary file %s cannot be read: %s"
                                  % (filename, getattr(e, "message", None) or e)) from None
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise errors.CorruptDataError(
        "%s is not a subword vocabulary: byte %d is not UTF-8 text" % (filename, e.start)
    ) from None
  lines = text.split("\n")
  if lines and not lines[-1]:
    lines.pop()
  if lines and lines[0].rstrip("\r") == TFDS_HEADER:
    if len(lines) < 2 or not lines[1].startswith(TFDS_METADATA_PREFIX):
      raise errors.CorruptDataError("%s: the line after %r must start with %r"
                                    % (filename, TFDS_HEADER, TFDS_METADATA_PREFIX))
    # As TFDS reads them: each line without its quotes.
    return "tfds", [line[1:-1] for line in lines[2:]], filename
  subtokens = [_unquote(line.strip()) for line in lines]
  if tuple(subtokens[:len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
    raise errors.CorruptDataError(
        "%s is not a subword vocabulary: it starts neither with %r (t2t_lite's and TFDS's "
        "format) nor with the lines '<pad>' and '<EOS>' (tensor2tensor's); first line: %r"
        % (filename, TFDS_HEADER, lines[0][:80] if lines else ""))
  return "t2t", subtokens, filename


def extra_reserved_tokens(reserved_tokens):
  """The reserved tokens that come after PAD and EOS, i.e. get ids 2, 3, ... in order.

  Accepts tensor2tensor's way of passing them (`RESERVED_TOKENS + ["<S>", "<E>"]`) or the
  extra ones alone: `extra_reserved_tokens(["<pad>", "<EOS>", "<S>"]) == ["<S>"]`.

  Raises:
    ValueError: PAD or EOS elsewhere than at the front, or a token listed twice.
  """
  tokens = list(reserved_tokens or ())
  if tuple(tokens[:NUM_RESERVED_TOKENS]) == RESERVED_TOKENS:
    tokens = tokens[NUM_RESERVED_TOKENS:]
  for t in tokens:
    if t in RESERVED_TOKENS:
      raise ValueError("reserved token %r has id %d already: pass it first, as in "
                       "RESERVED_TOKENS + [extra tokens], or leave it out"
                       % (t, RESERVED_TOKENS.index(t)))
  if len(set(tokens)) != len(tokens):
    raise ValueError("reserved tokens listed twice: %r" % (tokens,))
  return tokens


def _unquote(s):
  if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
    return s[1:-1]
  return s


@functools.lru_cache(maxsize=None)
def _is_alnum(c):
  return unicodedata.category(c)[0] in "LN"


def tokenize(text):
  """tensor2tensor's invertible tokenizer: "Dude - that's" -> ["Dude", " - ", "that", "'", "s"]."""
  if not text:
    return []
  tokens = []
  start = 0
  previous = _is_alnum(text[0])
  for pos in range(1, len(text)):
    current = _is_alnum(text[pos])
    if current != previous:
      token = text[start:pos]
      if token != " " or start == 0:
        tokens.append(token)
      start = pos
      previous = current
  tokens.append(text[start:])
  return tokens


def detokenize(tokens):
  """The inverse of `tokenize`: a space between two adjacent letter/digit tokens."""
  out = []
  previous_alnum = False
  for token in tokens:
    alnum = _is_alnum(token[0])
    if out and previous_alnum and alnum:
      out.append(" ")
    out.append(token)
    previous_alnum = alnum
  return "".join(out)


def _unescape(escaped):
  def replace(m):
    if m.group(1) is None:
      return "_" if m.group(0) == "\\u" else "\\"
    try:
      return chr(int(m.group(1)))
    except (ValueError, OverflowError):
      return "\u3013"  # GETA MARK: a code point that does not exist
  return _UNESCAPE_RE.sub(replace, escaped)


class T2TSubwords:
  """A tensor2tensor subword vocabulary: ids are positions in `subtokens` (0 `<pad>`, 1 `<EOS>`).

  Args:
    subtokens: the subtoken strings in id order, reserved tokens first.
    filename: where they were read from (for error messages).
  """

  def __init__(self, subtokens, filename=None):
    self.subtokens = list(subtokens)
    self.filename = filename
    self._ids = {s: i for i, s in enumerate(self.subtokens) if s}
    self._max_len = max([len(s) for s in self.subtokens] or [1])
    self._alphabet = {c for s in self.subtokens for c in s} | ESCAPE_CHARS
    self._cache = {}

  @property
  def vocab_size(self):
    return len(self.subtokens)

  def _escape(self, token):
    token = token.replace("\\", "\\\\").replace("_", "\\u")
    return "".join(c if c in self._alphabet and c != "\n" else "\\%d;" % ord(c)
                   for c in token) + "_"

  def _token_ids(self, token):
    ids = self._cache.get(token)
    if ids is not None:
      return ids
    escaped = self._escape(token)
    ids = []
    start = 0
    while start < len(escaped):
      for end in range(min(len(escaped), start + self._max_len), start, -1):
        i = self._ids.get(escaped[start:end])
        if i is not None:
          ids.append(i)
          start = end
          break
      else:
        raise ValueError("the subword vocabulary %s cannot encode %r: it has no subtoken for "
                         "%r (a tensor2tensor vocabulary holds every character of its "
                         "alphabet)" % (self.filename, token, escaped[start]))
    if len(self._cache) >= _CACHE_LIMIT:
      self._cache.clear()
    self._cache[token] = ids
    return ids

  def encode(self, text):
    ids = []
    for token in tokenize(text):
      ids.extend(self._token_ids(token))
    return ids

  def decode(self, ids):
    size = len(self.subtokens)
    joined = "".join(self.subtokens[i] for i in ids if 0 <= i < size)
    tokens = []
    for piece in joined.split("_"):
      if piece:
        token = _unescape(piece)
        if token:
          tokens.append(token)
    return detokenize(tokens)

  def store_to_file(self, filename):
    """Writes tensor2tensor's format: one subtoken a line, in single quotes."""
    with tf.io.gfile.GFile(filename, "w") as f:
      for s in self.subtokens:
        f.write("'%s'\n" % s)
