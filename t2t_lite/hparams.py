"""HParams: typed hyperparameters, set from `--hparams` strings and saved as JSON.

    hp = HParams(batch_size=4096, dropout=0.1, optimizer="adam", filter_sizes=[3, 5])
    hp.parse("batch_size=1024,dropout=0.2,filter_sizes=[3,5,7]")
    hp.batch_size                       # 1024
    HParams.from_json(hp.to_json()) == hp  # True

Values are None, bool, int, float, str, or a list of one of bool/int/float/str (tuples are
stored as lists; a list of ints and floats becomes a list of floats). Any other value (a dict,
an encoder, ...) may be stored and read back, but `parse` cannot set it and `to_json` only
writes it if `json` can.

The `parse` syntax (what `--hparams` and `--hp_NAME VALUE` take)
-----------------------------------------------------------------

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

Setting values from code: `hp.name = value` stores any value (like tensor2tensor's HParams, it
also adds a new name); `set_hparam`, `override_from_dict` and `parse` check the value against
the current one's type (None takes any; int is accepted for float).
"""
import copy as _copy
import difflib
import json
import math
import numbers
import re

from t2t_lite.errors import HParamsError

__all__ = ["HParams", "UnknownHParamError", "to_parse_string"]

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.ASCII | re.IGNORECASE)
_BOOL_WORDS = {"true": True, "false": False}
_MUST_QUOTE = ",=[]'\""
_MAX_PIECE = 80  # longest piece of the input quoted in an error message

# The kinds of value: a scalar type, ("list", element kind or None for an empty list),
# None, or _OTHER (anything parse cannot set).
_OTHER = "other"
_SCALARS = (bool, int, float, str)


class UnknownHParamError(HParamsError, AttributeError):
  """A name that is not an hparam; also an AttributeError so `getattr(hp, n, d)` works."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


def _normalize(value):
  """Python values for numbers, lists for tuples; a list of ints and floats -> floats."""
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, numbers.Real) and not isinstance(value, float):
    return float(value)
  if isinstance(value, (list, tuple)):
    items = [_normalize(v) for v in value]
    if _list_kind(items) is float:
      items = [float(v) for v in items]
    return items
  return value


def _list_kind(items):
  """The element kind of a normalized list: a scalar type, None (empty) or _OTHER."""
  if not items:
    return None
  types = {type(v) for v in items}
  if len(types) == 1 and types <= set(_SCALARS):
    return types.pop()
  if types <= {int, float}:
    return float
  return _OTHER


def _kind(value):
  if value is None:
    return None
  if type(value) in _SCALARS:
    return type(value)
  if isinstance(value, list):
    element = _list_kind(value)
    return _OTHER if element is _OTHER else ("list", element)
  return _OTHER


def _kind_name(kind):
  if kind is None:
    return "None"
  if isinstance(kind, tuple):
    return "list" if kind[1] is None else "list of %s" % kind[1].__name__
  return getattr(kind, "__name__", str(kind))


def _strict_equal(a, b):
  """Equality that tells 1, 1.0 and True apart and takes nan as equal to nan."""
  if type(a) is not type(b):
    return False
  if isinstance(a, float):
    return a == b or (math.isnan(a) and math.isnan(b))
  if isinstance(a, (list, tuple)):
    return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b))
  if isinstance(a, dict):
    return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
  try:
    return bool(a == b)
  except Exception:  # pylint: disable=broad-except
    return a is b


def _short(text):
  text = str(text)
  return text if len(text) <= _MAX_PIECE else text[:_MAX_PIECE - 3] + "..."


def _close_matches(name, names):
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
      if not _NAME_RE.fullmatch(name):
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
  kind = _kind(current)
  if kind is _OTHER:
    raise ValueError("%s holds a %s, which cannot be set from an hparams string." %
                     (name, type(current).__name__))
  if isinstance(value, list):
    if kind is not None and not isinstance(kind, tuple):
      raise ValueError("%s is a %s hparam, not a list." % (name, _kind_name(kind)))
    element = kind[1] if kind is not None else None
    if element is None:
      element = _infer_list_kind(value)
    return [_convert_scalar(element, v, name) for v in value]
  if isinstance(kind, tuple):
    raise ValueError("%s is a list hparam; write %s=[...]." % (name, name))
  if kind is None:
    kind = _infer_scalar_kind(value)
  if not value.quoted and not value.text and kind is not str:
    raise ValueError("%s is a %s hparam and the value is empty." % (name, _kind_name(kind)))
  return _convert_scalar(kind, value, name)


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
  if isinstance(values, HParams):
    values = values.values()
  pieces = []
  for name, value in values.items():
    value = _normalize(value)
    kind = _kind(value)
    if kind is None or kind is _OTHER:
      continue
    if isinstance(kind, tuple):
      text = "[" + ",".join(_format_scalar(v) for v in value) + "]"
    else:
      text = _format_scalar(value)
    pieces.append("%s=%s" % (name, text))
  return ",".join(pieces)


# ----------------------------------------------------------------------------------------


class HParams:
  """A set of named, typed hyperparameters.

  Args:
    values: an optional dict of name -> value, positional only.
    **kwargs: more name=value pairs.

  Names are Python identifiers that do not start with '_' and are not HParams methods
  (`values`, `parse`, ...). See the module docstring for the types and the parse syntax.

  Example:

      hp = HParams(hidden_size=64, dropout=0.1)
      hp.add_hparam("num_heads", 4)
      hp.parse("hidden_size=128,num_heads=8")
      hp.values()   # {"hidden_size": 128, "dropout": 0.1, "num_heads": 8}
      "dropout" in hp  # True
  """

  def __init__(self, values=None, /, **kwargs):
    object.__setattr__(self, "_values", {})
    for source in (values or {}), kwargs:
      for name, value in source.items():
        self.add_hparam(name, value)

  # -- access -----------------------------------------------------------------------------

  def __getattr__(self, name):
    # Only called when normal lookup fails, i.e. for hparam names.
    try:
      return self.__dict__["_values"][name]
    except KeyError:
      pass
    if name.startswith("_"):  # never an hparam; frameworks probe such names often
      raise AttributeError(name)
    raise UnknownHParamError("HParams has no hparam %r.%s" %
                             (name, _close_matches(name, self.__dict__.get("_values", ()))))

  def __setattr__(self, name, value):
    """`hp.name = value` stores `value` as is (no type check); a new name is added."""
    if name in self._values:
      self._values[name] = _normalize(value)
    else:
      self.add_hparam(name, value)

  def __delattr__(self, name):
    if name not in self._values:
      raise self._unknown(name)
    del self._values[name]

  def __contains__(self, name):
    return name in self._values

  def __eq__(self, other):
    if not isinstance(other, HParams):
      return NotImplemented
    return _strict_equal(self._values, other._values)

  __hash__ = None  # mutable

  def __repr__(self):
    return "HParams(%s)" % ", ".join("%s=%r" % kv for kv in self._values.items())

  def __getstate__(self):
    return dict(self._values)

  def __setstate__(self, state):
    object.__setattr__(self, "_values", dict(state))

  def _unknown(self, name):
    return UnknownHParamError("Unknown hparam %r.%s" %
                              (name, _close_matches(name, self._values)))

  def get(self, name, default=None):
    """The value of `name`, or `default` if there is no such hparam."""
    return self._values.get(name, default)

  def values(self):
    """A new dict of name -> value (lists copied), in the order the names were added."""
    return {k: list(v) if isinstance(v, list) else v for k, v in self._values.items()}

  # -- changing ---------------------------------------------------------------------------

  def add_hparam(self, name, value):
    """Adds a new hparam.

    Args:
      name: a Python identifier, not starting with '_' and not an HParams attribute.
      value: its value; its type is the hparam's type for `parse` and `set_hparam`.

    Raises:
      HParamsError: if `name` is invalid, reserved or already an hparam.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name.startswith("_"):
      raise HParamsError("Invalid hparam name %r: use letters, digits and '_', not starting "
                         "with a digit or '_'." % (name,))
    if hasattr(type(self), name):
      raise HParamsError("Invalid hparam name %r: it is an HParams method." % name)
    if name in self._values:
      raise HParamsError("Hparam %r already exists (value %r); use set_hparam to change it." %
                         (name, self._values[name]))
    self._values[name] = _normalize(value)

  def set_hparam(self, name, value):
    """Sets an existing hparam, checking `value` against the current value's type.

    None is accepted for any hparam; an int is accepted (as a float) for a float one; a list
    must hold elements of the current list's type.

    Raises:
      UnknownHParamError: (an HParamsError) if there is no hparam `name`.
      HParamsError: if `value` does not fit the current type.
    """
    self._values[name] = self._checked(name, value)

  def _checked(self, name, value):
    if name not in self._values:
      raise self._unknown(name)
    value = _normalize(value)
    current = self._values[name]
    kind, new = _kind(current), _kind(value)
    if value is None or kind is None or kind is _OTHER or kind == new:
      return value
    if kind is float and new is int:
      return float(value)
    if isinstance(kind, tuple) and isinstance(new, tuple):
      if kind[1] is None or new[1] is None:
        return value
      if kind[1] is float and new[1] is int:
        return [float(v) for v in value]
    raise HParamsError("Cannot set hparam %r to %r: it is a %s, not a %s." %
                       (name, value, _kind_name(kind), _kind_name(new)))

  def del_hparam(self, name):
    """Removes hparam `name`; does nothing if there is none (as tensor2tensor's HParams)."""
    self._values.pop(name, None)

  def override_from_dict(self, values_dict):
    """Sets each `name: value` with `set_hparam`'s checks; all or nothing. Returns self."""
    checked = {name: self._checked(name, value) for name, value in values_dict.items()}
    self._values.update(checked)
    return self

  def parse(self, text):
    """Sets hparams from a string like `"a=1,b=2.5,c=true,d=[1,2],e=hello"`.

    See the module docstring for the syntax, the types and quoting. All or nothing: on an
    error no hparam changes.

    Args:
      text: the string (None or "" changes nothing).

    Returns:
      self, updated.

    Raises:
      HParamsError: (a ValueError) for bad syntax, an unknown name, a name given twice or a
        value of the wrong type; the message quotes the offending piece.
    """
    if text is None:
      return self
    if not isinstance(text, str):
      raise HParamsError("hparams must be a string like 'a=1,b=2', not %r." % (text,))
    updates = {}
    for name, value, piece in _Scanner(text).items():
      if name in updates:
        raise HParamsError("Could not parse hparams at %r: %s is set twice." %
                           (_short(piece), name))
      if name not in self._values:
        raise HParamsError("Could not parse hparams at %r: unknown hparam %r.%s" %
                           (_short(piece), name, _close_matches(name, self._values)))
      try:
        updates[name] = _convert(name, self._values[name], value)
      except ValueError as e:
        raise HParamsError("Could not parse hparams at %r: %s" % (_short(piece), e)) from None
    self._values.update(updates)
    return self

  # -- copies and JSON --------------------------------------------------------------------

  def copy(self):
    """A deep copy (a value that cannot be deep-copied is shared)."""
    values = {}
    for name, value in self._values.items():
      try:
        values[name] = _copy.deepcopy(value)
      except Exception:  # pylint: disable=broad-except
        values[name] = value
    result = HParams()
    object.__setattr__(result, "_values", values)
    return result

  __copy__ = copy

  def __deepcopy__(self, memo):
    return self.copy()

  def to_parse_string(self):
    """This HParams' values as a `parse` string; see `to_parse_string`."""
    return to_parse_string(self._values)

  def to_json(self, indent=None, sort_keys=True):
    """The values as a JSON object string.

    Raises:
      HParamsError: naming the first hparam whose value JSON cannot write.
    """
    for name, value in self._values.items():
      try:
        json.dumps(value)
      except (TypeError, ValueError) as e:
        raise HParamsError("Cannot write hparam %r as JSON: %s" % (name, e)) from None
    return json.dumps(self._values, indent=indent, sort_keys=sort_keys)

  @classmethod
  def from_json(cls, text):
    """An HParams from `to_json`'s output.

    Raises:
      HParamsError: if `text` is not a JSON object of valid hparam names.
    """
    try:
      values = json.loads(text)
    except (TypeError, ValueError, RecursionError) as e:
      raise HParamsError("Invalid hparams JSON: %s" % e) from None
    if not isinstance(values, dict):
      raise HParamsError("Invalid hparams JSON: expected an object {name: value}, got %s." %
                         type(values).__name__)
    return cls(values)
