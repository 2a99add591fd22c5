"""The `--hparams` syntax: `NAME=VALUE,...` text read into typed values, and written back.

`parse_values(text, current)` (what `HParams.parse` runs) reads the text and types each value
by the hparam's current value; `to_parse_string(values)` writes values in the same syntax;
`normalize` and `value_kind` give the kinds of value `HParams.set_hparam` checks.

The syntax (what `--hparams` and `--hp_NAME VALUE` take)
--------------------------------------------------------

A comma-separated list of `NAME=VALUE`; spaces around names, values and commas are ignored::

    batch_size=1024, dropout=0.2, use_bias=true, filter_sizes=[3,5,7], optimizer=adafactor

The type of each value is fixed by the hparam's current value:

- int: an integer (`2.5` is an error, not a rounding).
- float: any number (`2` becomes `2.0`), also `inf`, `-inf`, `nan`.
- bool: `true`/`false` in any case, or `1`/`0`.
- str: the text as written (`optimizer=adam`); see quoting below.
- list: `[v1, v2, ...]`, each element read with the list's element type; `[]` is empty. An
  empty list, or None, takes the type the text shows (below).
- None: the type the text shows: an integer -> int, a number -> float, true/false -> bool,
  quoted text or any other text -> str, `[...]` -> a list whose elements are all ints, else all
  numbers (floats), else all true/false (bools), else strings.

**Quoting.** A string value (or list element) that contains `,` `=` `[` `]` `'` or `"`, or that
has leading or trailing spaces, must be quoted with `'...'` or `"..."`. Inside quotes, `\\\\` is a
backslash, and a backslash before the enclosing quote (`\\'` in '...', `\\"` in "...") is
that quote; any other backslash is kept as written::

    name='a,b=c'    sep=", "    path="C:\\data"    msg='it\\'s'    tags=['x,y', "z"]

Quoted text is always a string: `n='3'` is an error for an int hparam, and gives the string
"3" for an hparam whose value is None. An unquoted empty value (`name=`) is the empty string
for a str hparam and an error otherwise. `to_parse_string(values)` writes values back in this
syntax (every string quoted), so `hp.parse(to_parse_string(values))` round-trips.

Errors (an unknown name, with its close matches; a name given twice; a value of the wrong
type; bad syntax) raise `t2t_lite.errors.HParamsError` (a ValueError) quoting the offending
`NAME=VALUE` piece, and leave the HParams unchanged. Any text gives either a result or an
HParamsError; the parser reads its input once, left to right.
"""
from collections import abc
import difflib
import numbers
import re

from t2t_lite.errors import HParamsError

__all__ = ["NAME_RE", "OTHER", "normalize", "value_kind", "kind_name", "close_matches",
           "parse_values", "to_parse_string"]

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.ASCII | re.IGNORECASE)
_BOOL_WORDS = {"true": True, "false": False}
_MUST_QUOTE = ",=[]'\""
_MAX_PIECE = 80  # longest piece of the input quoted in an error message

# The kinds of value: a scalar type, ("list", element kind or None for an empty list),
# None, or OTHER (anything parse cannot set).
OTHER = "other"
_SCALARS = (bool, int, float, str)


def normalize(value):
  """Python values for numbers, lists for tuples; a list of ints and floats -> floats."""
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, numbers.Real) and not isinstance(value, float):
    return float(value)
  if isinstance(value, (list, tuple)):
    items = [normalize(v) for v in value]
    if _list_kind(items) is float:
      items = [float(v) for v in items]
    return items
  return value


def _list_kind(items):
  """The element kind of a normalized list: a scalar type, None (empty) or OTHER."""
  if not items:
    return None
  types = {type(v) for v in items}
  if len(types) == 1 and types <= set(_SCALARS):
    return types.pop()
  if types <= {int, float}:
    return float
  return OTHER


def value_kind(value):
  """A normalized value's kind: None, bool, int, float, str, ("list", element kind), OTHER."""
  if value is None:
    return None
  if type(value) in _SCALARS:
    return type(value)
  if isinstance(value, list):
    element = _list_kind(value)
    return OTHER if element is OTHER else ("list", element)
  return OTHER


def kind_name(kind):
  """A kind as error messages write it: "int", "list of float", ..."""
  if kind is None:
    return "None"
  if isinstance(kind, tuple):
    return "list" if kind[1] is None else "list of %s" % kind[1].__name__
  return getattr(kind, "__name__", str(kind))


def _short(text):
  text = str(text)
  return text if len(text) <= _MAX_PIECE else text[:_MAX_PIECE - 3] + "..."


def close_matches(name, names):
  """" Did you mean 'x' or 'y'?" for the names close to `name`, or ""."""
  close = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.6)
  if not close:
    return ""
  return " Did you mean %s?" % " or ".join(repr(c) for c in close)


# ----------------------------------------------------------------------------------------
# Parsing: text -> [(name, value, piece)], value a _Text or a list of _Text.


class _Text:
  """One scalar as written: its text (quotes removed) and whether it was quoted."""
  __slots__ = ("text", "quoted")

  def __init__(self, text, quoted):
    self.text = text
    self.quoted = quoted


class _Scanner:
  """Reads `NAME=VALUE,...` left to right, once (linear time on any input)."""

  def __init__(self, text):
    self.text = text
    self.n = len(text)
    self.i = 0
    self.start = 0  # where the current NAME=VALUE piece starts
    self.in_list = False

  def error(self, why):
    at = max(self.i, self.start)
    if self.in_list:  # the piece runs to the list's end, or the text's end
      end = self.text.find("]", at)
      end = end + 1 if end >= 0 else self.n
    else:
      end = self.text.find(",", at)
      end = end if end >= 0 else self.n
    piece = self.text[self.start:end].strip()
    return HParamsError("Could not parse hparams at %r: %s" % (_short(piece), why))

  def skip_space(self):
    while self.i < self.n and self.text[self.i].isspace():
      self.i += 1

  def items(self):
    result = []
    while True:
      while self.i < self.n and (self.text[self.i].isspace() or self.text[self.i] == ","):
        self.i += 1
      if self.i >= self.n:
        return result
      self.start = self.i
      eq = self.text.find("=", self.i)
      comma = self.text.find(",", self.i)
      if eq < 0 or 0 <= comma < eq:
        raise self.error("expected NAME=VALUE (quote a string value that contains ',').")
      name = self.text[self.i:eq].strip()
      if not NAME_RE.fullmatch(name):
        raise self.error("%r is not an hparam name (letters, digits and '_')." % _short(name))
      self.i = eq + 1
      self.skip_space()
      if self.i < self.n and self.text[self.i] == "[":
        self.i += 1
        self.in_list = True
        value = self.list_value()
        self.in_list = False
      else:
        value = self.scalar(in_list=False)
      self.skip_space()
      if self.i < self.n and self.text[self.i] != ",":
        raise self.error("unexpected %r after the value; separate settings with ',' and "
                         "quote strings that contain , = [ ] or quotes." % self.text[self.i])
      result.append((name, value, self.text[self.start:self.i].strip()))

  def list_value(self):
    elements = []
    self.skip_space()
    if self.i < self.n and self.text[self.i] == "]":
      self.i += 1
      return elements
    while True:
      self.skip_space()
      if self.i >= self.n:
        raise self.error("the list has no closing ']'.")
      element = self.scalar(in_list=True)
      if not element.quoted and not element.text:
        raise self.error("an empty list element (write '' for an empty string).")
      elements.append(element)
      self.skip_space()
      if self.i >= self.n:
        raise self.error("the list has no closing ']'.")
      if self.text[self.i] == "]":
        self.i += 1
        return elements
      if self.text[self.i] != ",":
        raise self.error("unexpected %r in the list." % self.text[self.i])
      self.i += 1

  def scalar(self, in_list):
    text, n = self.text, self.n
    if self.i < n and text[self.i] in "'\"":
      quote = text[self.i]
      self.i += 1
      chars = []
      while True:
        if self.i >= n:
          raise self.error("the quoted string has no closing %s." % quote)
        c = text[self.i]
        if c == "\\" and self.i + 1 < n and text[self.i + 1] in (quote, "\\"):
          chars.append(text[self.i + 1])
          self.i += 2
        elif c == quote:
          self.i += 1
          return _Text("".join(chars), True)
        else:
          chars.append(c)
          self.i += 1
    stops = ",]" if in_list else ","
    begin = self.i
    while self.i < n and text[self.i] not in stops:
      self.i += 1
    raw = text[begin:self.i].strip()
    bad = [c for c in _MUST_QUOTE if c in raw]
    if bad:
      if bad == ["["] and in_list:
        raise self.error("nested lists are not supported.")
      raise self.error("a value containing %r must be quoted ('...' or \"...\")." % bad[0])
    return _Text(raw, False)


def _convert_scalar(kind, value, name):
  """A _Text read as `kind` (bool, int, float or str); raises ValueError with the reason."""
  text = value.text
  if kind is str:
    return text
  if value.quoted:
    raise ValueError("%s is a %s hparam, and quoted text is a string." % (name, kind.__name__))
  if kind is bool:
    word = text.lower()
    if word in _BOOL_WORDS:
      return _BOOL_WORDS[word]
    if text in ("1", "0"):
      return text == "1"
    raise ValueError("%s is a bool hparam; %r is not true, false, 1 or 0." % (name, _short(text)))
  if kind is int:
    if _INT_RE.fullmatch(text):
      return int(text)  # may raise ValueError past Python's int digit limit
    raise ValueError("%s is an int hparam; %r is not an integer." % (name, _short(text)))
  if kind is float:
    if _INT_RE.fullmatch(text) or _FLOAT_RE.fullmatch(text):
      return float(text)
    raise ValueError("%s is a float hparam; %r is not a number." % (name, _short(text)))
  raise ValueError("%s cannot be set from text." % name)


def _infer_scalar_kind(value):
  if value.quoted:
    return str
  if _INT_RE.fullmatch(value.text):
    return int
  if _FLOAT_RE.fullmatch(value.text):
    return float
  if value.text.lower() in _BOOL_WORDS:
    return bool
  return str


def _infer_list_kind(elements):
  kinds = {_infer_scalar_kind(e) for e in elements}
  if kinds == {int}:
    return int
  if kinds <= {int, float}:
    return float
  if kinds == {bool}:
    return bool
  return str


def _convert(name, current, value):
  """The Python value for parsed `value` given the hparam's `current` value."""
  kind = value_kind(current)
  if kind is OTHER:
    raise ValueError("%s holds a %s, which cannot be set from an hparams string." %
                     (name, type(current).__name__))
  if isinstance(value, list):
    if kind is not None and not isinstance(kind, tuple):
      raise ValueError("%s is a %s hparam, not a list." % (name, kind_name(kind)))
    element = kind[1] if kind is not None else None
    if element is None:
      element = _infer_list_kind(value)
    return [_convert_scalar(element, v, name) for v in value]
  if isinstance(kind, tuple):
    raise ValueError("%s is a list hparam; write %s=[...]." % (name, name))
  if kind is None:
    kind = _infer_scalar_kind(value)
  if not value.quoted and not value.text and kind is not str:
    raise ValueError("%s is a %s hparam and the value is empty." % (name, kind_name(kind)))
  return _convert_scalar(kind, value, name)


def parse_values(text, current):
  """The values a `NAME=VALUE,...` string sets, typed by the hparams' current values.

  Args:
    text: the string (see the module docstring for the syntax).
    current: a dict of every hparam's name -> its current value.

  Returns:
    A new dict of name -> value for the names `text` sets, in its order.

  Raises:
    HParamsError: (a ValueError) for bad syntax, an unknown name, a name given twice or a
      value of the wrong type; the message quotes the offending piece.
  """
  if not isinstance(text, str):
    raise HParamsError("hparams must be a string like 'a=1,b=2', not %r." % (text,))
  updates = {}
  for name, value, piece in _Scanner(text).items():
    if name in updates:
      raise HParamsError("Could not parse hparams at %r: %s is set twice." %
                         (_short(piece), name))
    if name not in current:
      raise HParamsError("Could not parse hparams at %r: unknown hparam %r.%s" %
                         (_short(piece), name, close_matches(name, current)))
    try:
      updates[name] = _convert(name, current[name], value)
    except ValueError as e:
      raise HParamsError("Could not parse hparams at %r: %s" % (_short(piece), e)) from None
  return updates


# ----------------------------------------------------------------------------------------
# Writing values in the parse syntax.


def _quote(text):
  return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format_scalar(value):
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, int):
    return str(value)
  if isinstance(value, float):
    return repr(value)
  return _quote(value)


def to_parse_string(values):
  """Writes `values` (a dict or an HParams) as a string that `HParams.parse` reads back.

  Every string is quoted, so the result means the same whatever the target's types are.
  Values that `parse` cannot set are left out: None, and anything but bool, int, float, str
  or a list of one of those.

  Args:
    values: a dict of name -> value, or an HParams.

  Returns:
    A string like `"a=1,b=2.5,c=true,d=[1,2],e='hello'"` (names in the dict's order).
  """
  if not isinstance(values, abc.Mapping):  # an HParams
    values = values.values()
  pieces = []
  for name, value in values.items():
    value = normalize(value)
    kind = value_kind(value)
    if kind is None or kind is OTHER:
      continue
    if isinstance(kind, tuple):
      text = "[" + ",".join(_format_scalar(v) for v in value) + "]"
    else:
      text = _format_scalar(value)
    pieces.append("%s=%s" % (name, text))
  return ",".join(pieces)
