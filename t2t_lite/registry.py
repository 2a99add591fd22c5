"""The registry of problems, models and hparams sets.

    from t2t_lite import registry

    @registry.register_problem            # registered as "my_copy_task"
    class MyCopyTask(Problem): ...

    @registry.register_model("my_net")     # an explicit name
    class MyNet(keras.Model): ...

    @registry.register_hparams
    def my_net_tiny():                     # a function returning a fresh HParams
      return HParams(hidden_size=32)

    registry.problem("my_copy_task")       # a MyCopyTask instance
    registry.model("my_net")               # the class
    registry.hparams("my_net_tiny")        # a new HParams on each call

Problem names take tensor2tensor's two modifiers: `NAME_rev` is NAME with inputs and targets
swapped and `NAME_copy` is NAME with targets replaced by its inputs (the Problem class does
the swap; see `t2t_lite.data.Problem`). A name registered with such a suffix is looked up as
written first.

An unknown name raises `t2t_lite.errors.UnknownNameError`, a `KeyError` as tensor2tensor's
registry raised, whose message names the flag, the closest registered names and how to register
one (`str(e)` is that message, unquoted).

Built-in problems register when `problems` is imported, built-in models and hparams sets when
`t2t_lite.models` is; the scripts import both, then every `--t2t_usr_dir`.
"""
import difflib
import inspect
import re

from t2t_lite.errors import RegistrationError, UnknownNameError

_USR_DIR_HINT = ("To register your own, put it in a module or folder and pass "
                 "--t2t_usr_dir=PATH (or import it before the look-up).")

PROBLEM_MODIFIERS = ("_rev", "_copy")


def default_name(obj_or_name):
  """snake_case of a class or function name: `MyHTTPModel` -> `my_http_model`."""
  name = obj_or_name if isinstance(obj_or_name, str) else obj_or_name.__name__
  name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
  name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
  return name.lower()


def _where(obj):
  """`module.qualname (file:line)` for error messages."""
  ident = "%s.%s" % (getattr(obj, "__module__", "?"),
                     getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj))))
  try:
    return "%s (%s:%d)" % (ident, inspect.getsourcefile(obj), inspect.getsourcelines(obj)[1])
  except (TypeError, OSError):
    return ident


def _same_definition(a, b):
  # A module imported twice (a reload, or once as a package member and once from
  # --t2t_usr_dir's path) makes a new object for the same definition: not a clash.
  return a is b or (getattr(a, "__module__", None) == getattr(b, "__module__", object()) and
                    getattr(a, "__qualname__", None) == getattr(b, "__qualname__", object()))


class _Registry:
  """One kind of registered thing (problems, models or hparams sets)."""

  def __init__(self, kind, flag):
    self.kind = kind  # "problem", "model", "hparams set"
    self.flag = flag  # the flag users pass the name with
    self._items = {}

  def register(self, name_or_obj=None, name=None):
    """A decorator: `@reg`, `@reg("name")` or `@reg(name="name")`."""
    if callable(name_or_obj):  # `@reg` or a direct `reg(obj)` / `reg(obj, name="x")`
      return self._add(name if name is not None else default_name(name_or_obj), name_or_obj)
    explicit = name if name is not None else name_or_obj

    def decorator(obj):
      return self._add(explicit if explicit is not None else default_name(obj), obj)

    return decorator

  def _add(self, name, obj):
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
      raise RegistrationError("%s name %r must be a non-empty string of letters, digits, "
                              "'_', '.' or '-'." % (self.kind, name))
    old = self._items.get(name)
    if old is not None and not _same_definition(old, obj):
      raise RegistrationError(
          "%s %r is already registered by %s; cannot register it again for %s. Pick another "
          "name (pass it to the decorator)." % (self.kind, name, _where(old), _where(obj)))
    self._items[name] = obj
    # Only the class's own attribute counts: a subclass of a registered class inherits
    # REGISTERED_NAME and must still get its own.
    if isinstance(obj, type) and "REGISTERED_NAME" not in vars(obj):
      try:
        obj.REGISTERED_NAME = name
      except (AttributeError, TypeError):
        pass
    return obj

  def __contains__(self, name):
    return isinstance(name, str) and name in self._items

  def names(self):
    return sorted(self._items)

  def get(self, name):
    """The registered object; UnknownNameError (a KeyError) if there is none."""
    if name not in self:
      raise self.unknown(name)
    return self._items[name]

  def unknown(self, name):
    names = self.names()
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    if close:
      hint = "did you mean %s?" % " or ".join(repr(c) for c in close)
    elif not names:
      hint = "none are registered."
    elif len(names) <= 12:
      hint = "registered: %s." % ", ".join(names)
    else:
      hint = "%d are registered; list them with --registry_help." % len(names)
    return UnknownNameError("%s=%s: unknown %s; %s %s" %
                            (self.flag, name, self.kind, hint, _USR_DIR_HINT))

  def unregister(self, name):
    """Removes a name (for tests and interactive sessions)."""
    self._items.pop(name, None)


_PROBLEMS = _Registry("problem", "--problem")
_MODELS = _Registry("model", "--model")
_HPARAMS = _Registry("hparams set", "--hparams_set")


def register_problem(name_or_cls=None, name=None):
  """Registers a Problem subclass; bare, or with a name."""
  return _PROBLEMS.register(name_or_cls, name)


def register_model(name_or_cls=None, name=None):
  """Registers a keras.Model subclass built as `cls(hparams, problem_hparams)`."""
  return _MODELS.register(name_or_cls, name)


def register_hparams(name_or_fn=None, name=None):
  """Registers a function that returns a new HParams."""
  return _HPARAMS.register(name_or_fn, name)


def parse_problem_name(name):
  """Splits tensor2tensor's modifiers: returns (base_name, was_reversed, was_copy)."""
  was_reversed = was_copy = False
  base = name
  for _ in range(2):
    if base.endswith("_rev") and not was_reversed:
      base, was_reversed = base[:-len("_rev")], True
    elif base.endswith("_copy") and not was_copy:
      base, was_copy = base[:-len("_copy")], True
  return base, was_reversed, was_copy


def problem_class(name):
  """The registered class for a problem name (modifiers removed)."""
  if name in _PROBLEMS:
    return _PROBLEMS.get(name)
  base, was_reversed, was_copy = parse_problem_name(str(name))
  if (was_reversed or was_copy) and base in _PROBLEMS:
    return _PROBLEMS.get(base)
  raise _PROBLEMS.unknown(name)


def problem_name_of(cls):
  """The name a Problem class is registered under (its snake_case name if not registered).

  Only a REGISTERED_NAME set on the class itself counts: a subclass inherits its parent's
  attribute, so the registry is asked which name maps to exactly this class.
  """
  def registered_as(name):
    try:
      return problem_class(name) is cls
    except UnknownNameError:
      return False

  own = vars(cls).get("REGISTERED_NAME")
  default = default_name(cls)
  for name in ((own,) if own else ()) + (default,) + tuple(list_problems()):
    if registered_as(name):
      return name
  return own or default


def problem(name):
  """A new instance of the named problem; `NAME_rev` and `NAME_copy` are understood."""
  if name in _PROBLEMS:
    return _PROBLEMS.get(name)()
  base, was_reversed, was_copy = parse_problem_name(str(name))
  if (was_reversed or was_copy) and base in _PROBLEMS:
    # Only the modifiers in the name are passed: `cls(was_reversed=True)` for NAME_rev.
    modifiers = {k: True for k, v in (("was_reversed", was_reversed), ("was_copy", was_copy))
                 if v}
    return _PROBLEMS.get(base)(**modifiers)
  raise _PROBLEMS.unknown(name)


def model(name):
  """The registered model class."""
  return _MODELS.get(name)


def hparams(name):
  """Calls the registered hparams function: a fresh HParams on every call."""
  hp = _HPARAMS.get(name)()
  if hp is None:
    raise RegistrationError("hparams set %r returned None; its function must return an "
                            "HParams (%s)." % (name, _where(_HPARAMS.get(name))))
  return hp


def hparams_function(name):
  """The registered hparams function itself (for its docstring)."""
  return _HPARAMS.get(name)


def list_problems():
  return _PROBLEMS.names()


def list_models():
  return _MODELS.names()


def list_hparams():
  return _HPARAMS.names()


def unregister(kind, name):
  """Removes `name` from "problem", "model" or "hparams" (tests, notebooks)."""
  {"problem": _PROBLEMS, "model": _MODELS, "hparams": _HPARAMS}[kind].unregister(name)


def help_string():
  """The three lists as text, for --registry_help."""
  def block(title, names):
    body = "\n".join("  " + n for n in names) if names else "  (none)"
    return "%s (%d):\n%s" % (title, len(names), body)

  return "\n\n".join([
      block("Problems", list_problems()),
      block("Models", list_models()),
      block("HParams sets", list_hparams()),
  ]) + ("\n\nProblem names also take the modifiers _rev (inputs and targets swapped) and "
        "_copy (targets = inputs).")
