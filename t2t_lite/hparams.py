"""HParams: typed hyperparameters, set from `--hparams` strings and saved as JSON.

    hp = HParams(batch_size=4096, dropout=0.1, optimizer="adam", filter_sizes=[3, 5])
    hp.parse("batch_size=1024,dropout=0.2,filter_sizes=[3,5,7]")
    hp.batch_size                       # 1024
    HParams.from_json(hp.to_json()) == hp  # True

Values are None, bool, int, float, str, or a list of one of bool/int/float/str (tuples are
stored as lists; a list of ints and floats becomes a list of floats). Any other value (a dict,
an encoder, ...) may be stored and read back, but `parse` cannot set it and `to_json` only
writes it if `json` can.

`parse` reads tensor2tensor's `--hparams` syntax, `NAME=VALUE,...` with each value typed by the
hparam's current value (quote strings that contain `,` `=` `[` `]` or quotes); the syntax, its
quoting and its errors are described in `t2t_lite.hparams_parser`, which reads and writes it.
`to_parse_string(values)` writes values back in that syntax.

Setting values from code: `hp.name = value` stores any value (like tensor2tensor's HParams, it
also adds a new name); `set_hparam`, `override_from_dict` and `parse` check the value against
the current one's type (None takes any; int is accepted for float).
"""
import copy as _copy
import json
import math

from t2t_lite.errors import HParamsError
from t2t_lite.hparams_parser import NAME_RE
from t2t_lite.hparams_parser import OTHER
from t2t_lite.hparams_parser import close_matches
from t2t_lite.hparams_parser import kind_name
from t2t_lite.hparams_parser import normalize
from t2t_lite.hparams_parser import parse_values
from t2t_lite.hparams_parser import to_parse_string
from t2t_lite.hparams_parser import value_kind

__all__ = ["HParams", "UnknownHParamError", "to_parse_string"]


class UnknownHParamError(HParamsError, AttributeError):
  """A name that is not an hparam; also an AttributeError so `getattr(hp, n, d)` works."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


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


class HParams:
  """A set of named, typed hyperparameters.

  Args:
    values: an optional dict of name -> value, positional only.
    **kwargs: more name=value pairs.

  Names are Python identifiers that do not start with '_' and are not HParams methods
  (`values`, `parse`, ...). See the module docstring for the types, and
  `t2t_lite.hparams_parser` for the parse syntax.

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
                             (name, close_matches(name, self.__dict__.get("_values", ()))))

  def __setattr__(self, name, value):
    """`hp.name = value` stores `value` as is (no type check); a new name is added."""
    if name in self._values:
      self._values[name] = normalize(value)
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
                              (name, close_matches(name, self._values)))

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
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.startswith("_"):
      raise HParamsError("Invalid hparam name %r: use letters, digits and '_', not starting "
                         "with a digit or '_'." % (name,))
    if hasattr(type(self), name):
      raise HParamsError("Invalid hparam name %r: it is an HParams method." % name)
    if name in self._values:
      raise HParamsError("Hparam %r already exists (value %r); use set_hparam to change it." %
                         (name, self._values[name]))
    self._values[name] = normalize(value)

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
    value = normalize(value)
    current = self._values[name]
    kind, new = value_kind(current), value_kind(value)
    if value is None or kind is None or kind is OTHER or kind == new:
      return value
    if kind is float and new is int:
      return float(value)
    if isinstance(kind, tuple) and isinstance(new, tuple):
      if kind[1] is None or new[1] is None:
        return value
      if kind[1] is float and new[1] is int:
        return [float(v) for v in value]
    raise HParamsError("Cannot set hparam %r to %r: it is a %s, not a %s." %
                       (name, value, kind_name(kind), kind_name(new)))

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

    See `t2t_lite.hparams_parser` for the syntax, the types and quoting. All or nothing: on
    an error no hparam changes.

    Args:
      text: the string (None or "" changes nothing).

    Returns:
      self, updated.

    Raises:
      HParamsError: (a ValueError) for bad syntax, an unknown name, a name given twice or a
        value of the wrong type; the message quotes the offending piece.
    """
    if text is not None:
      self._values.update(parse_values(text, self._values))
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

  def to_json(self, indent=None, separators=None, sort_keys=False):
    """The values as a JSON object string (tensor2tensor's signature).

    Args:
      indent: `json.dumps`' indent: None (the default) is the most compact form, an int
        pretty-prints with that many spaces per level.
      separators: `json.dumps`' optional `(item_separator, key_separator)` pair.
      sort_keys: whether names are written sorted; by default in the order they were added.

    Raises:
      HParamsError: naming the first hparam whose value JSON cannot write.
    """
    for name, value in self._values.items():
      try:
        json.dumps(value)
      except (TypeError, ValueError) as e:
        raise HParamsError("Cannot write hparam %r as JSON: %s" % (name, e)) from None
    return json.dumps(self._values, indent=indent, separators=separators, sort_keys=sort_keys)

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
