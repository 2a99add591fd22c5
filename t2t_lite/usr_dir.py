"""Imports user code named by --t2t_usr_dir, so that its registrations happen.

Each entry is one of:

- a package directory (it has an `__init__.py`): imported as a package named after the
  directory, from that directory. Its `__init__.py` imports the modules that register
  things (`from . import my_problem`). Its parent directory is appended to `sys.path`.
- a plain directory of `.py` files: the directory is put first on `sys.path` (as Python
  does for a script's own directory) and every `.py` file in it is imported, in name order,
  as a top-level module named after the file.
- a `.py` file: imported the same way, as a top-level module.
- a dotted module name (`my_project.t2t_defs`): imported with `importlib`.

A module name that is already imported from somewhere else (say a file `problems.py`, while
t2t_lite's own `problems` package is imported) or that is a standard-library module is an
error that asks to rename the file; it would otherwise shadow, or be shadowed by, the other
module. Importing the same directory again does nothing more (Python caches the modules), so
no registration clashes.
"""
import importlib
import importlib.util
import os
import re
import sys
import traceback

from t2t_lite.errors import ConfigError

__all__ = ["import_usr_dirs", "import_usr_dir", "split_usr_dirs"]

_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def split_usr_dirs(paths):
  """The entries of a --t2t_usr_dir value: None, a string or a list, each maybe a comma list.

  Returns:
    A list of non-empty, stripped strings in order, without repeats.
  """
  if paths is None:
    return []
  if isinstance(paths, str):
    paths = [paths]
  result = []
  for item in paths:
    for path in str(item).split(","):
      path = path.strip()
      if path and path not in result:
        result.append(path)
  return result


def import_usr_dirs(paths):
  """Imports every entry of `paths` (see `split_usr_dirs` and the module docstring).

  Args:
    paths: the --t2t_usr_dir value: None, a string or a list of strings.

  Returns:
    The names of the modules imported (or found already imported), in order, each once.

  Raises:
    ConfigError: for an entry that is neither a directory, a .py file nor an importable
      module, a module name clash, or a module that raises on import (the message gives the
      exception and its file:line).
  """
  names = []
  for path in split_usr_dirs(paths):
    names.extend(n for n in import_usr_dir(path) if n not in names)
  return names


def import_usr_dir(path):
  """Imports one --t2t_usr_dir entry; returns the names of the modules it imported."""
  local = os.path.realpath(os.path.expanduser(path))
  if os.path.isdir(local):
    if os.path.isfile(os.path.join(local, "__init__.py")):
      return [_import_package(path, local)]
    files = sorted(f for f in os.listdir(local)
                   if f.endswith(".py") and not f.startswith(".") and
                   os.path.isfile(os.path.join(local, f)))
    if not files:
      raise ConfigError("--t2t_usr_dir=%s: the directory has no .py files (and no "
                        "__init__.py) to import." % path)
    _put_first_on_path(local)
    return [_import_file(path, os.path.join(local, f)) for f in files]
  if local.endswith(".py") and os.path.isfile(local):
    _put_first_on_path(os.path.dirname(local))
    return [_import_file(path, local)]
  if _MODULE_RE.fullmatch(path):
    return [_import_module_name(path)]
  raise ConfigError("--t2t_usr_dir=%s: no such directory, .py file or module." % path)


def _put_first_on_path(directory):
  if directory in sys.path:
    sys.path.remove(directory)
  sys.path.insert(0, directory)


def _location(module):
  """The real path of a module's directory (package) or file; None if it has none."""
  paths = getattr(module, "__path__", None)
  if paths:
    return os.path.realpath(list(paths)[0])
  filename = getattr(module, "__file__", None)
  return os.path.realpath(filename) if filename else None


def _check_name_free(path, name, location):
  """Raises unless `name` is unused or already names the module at `location`."""
  module = sys.modules.get(name)
  if module is not None:
    where = _location(module)
    if where == location:
      return True  # imported before: nothing to do
    raise ConfigError(
        "--t2t_usr_dir=%s: cannot import %s as module %r: a module of that name is already "
        "imported from %s. Rename it." % (path, location, name, where or "(built in)"))
  if name in sys.builtin_module_names or name in getattr(sys, "stdlib_module_names", ()):
    raise ConfigError("--t2t_usr_dir=%s: %s would be module %r, which is a standard-library "
                      "module. Rename it." % (path, location, name))
  return False


def _import_package(path, directory):
  name = os.path.basename(directory)
  if _check_name_free(path, name, directory):
    return name
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(directory, "__init__.py"), submodule_search_locations=[directory])
  _run_module(path, name, spec)
  parent = os.path.dirname(directory)
  if parent not in sys.path:
    sys.path.append(parent)  # so that spawned processes can import it by name
  return name


def _import_file(path, filename):
  name = os.path.splitext(os.path.basename(filename))[0]
  if not _MODULE_RE.fullmatch(name) or "." in name:
    raise ConfigError("--t2t_usr_dir=%s: %s is not a valid module name; rename it (letters, "
                      "digits and '_')." % (path, filename))
  if _check_name_free(path, name, filename):
    return name
  _run_module(path, name, importlib.util.spec_from_file_location(name, filename))
  return name


def _run_module(path, name, spec):
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    sys.modules.pop(name, None)
    raise _import_failed(path, e, os.path.dirname(spec.origin)) from e


def _import_module_name(path):
  try:
    importlib.import_module(path)
  except ModuleNotFoundError as e:
    if e.name and (path == e.name or path.startswith(e.name + ".")):
      raise ConfigError("--t2t_usr_dir=%s: no such directory, .py file or module (%s)." %
                        (path, e)) from e
    raise _import_failed(path, e, _module_dir(path)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise _import_failed(path, e, _module_dir(path)) from e
  return path


def _module_dir(name):
  """The directory of the top-level package of dotted `name` (its file if a module)."""
  try:
    spec = importlib.util.find_spec(name.split(".")[0])
  except Exception:  # pylint: disable=broad-except
    return None
  if spec is None or not spec.origin or not os.path.isabs(spec.origin):
    return None
  origin = os.path.realpath(spec.origin)
  return os.path.dirname(origin) if spec.submodule_search_locations else origin


def _inside(filename, root):
  filename = os.path.realpath(filename)
  return filename == root or filename.startswith(root + os.sep)


def _import_failed(path, error, user_dir):
  # user_dir: the user's directory (or file); a frame in it is the one to show.
  """A one-line ConfigError: the exception and the file:line it came from."""
  filename = lineno = None
  if isinstance(error, SyntaxError) and error.filename:
    filename, lineno = error.filename, error.lineno
  else:
    frames = traceback.extract_tb(error.__traceback__)
    # The innermost frame in the user's code, else the innermost outside importlib.
    mine = [f for f in frames if user_dir and _inside(f.filename, user_dir)]
    others = [f for f in frames if "importlib" not in f.filename and
              not f.filename.startswith("<frozen") and f.filename != __file__]
    frame = (mine or others or frames or [None])[-1]
    if frame is not None:
      filename, lineno = frame.filename, frame.lineno
  where = " (%s:%s)" % (filename, lineno) if filename else ""
  message = " ".join(str(error).split())
  return ConfigError("--t2t_usr_dir=%s: importing it raised %s: %s%s" %
                     (path, type(error).__name__, message, where))
