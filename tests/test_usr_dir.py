"""Tests for t2t_lite.usr_dir: packages, plain folders, files, module names, and errors."""
import os
import sys
import textwrap

import pytest

from t2t_lite import registry
from t2t_lite import usr_dir
from t2t_lite.errors import ConfigError, T2TUserError

PROBLEM_SOURCE = textwrap.dedent("""\
    from t2t_lite import registry
    from t2t_lite.hparams import HParams


    @registry.register_problem
    class {cls}:
      def __init__(self, was_reversed=False, was_copy=False):
        self.was_reversed = was_reversed


    @registry.register_hparams
    def {cls_snake}_hparams():
      return HParams(size={size})
    """)


def _snake(name):
  return registry.default_name(name)


def write_module(path, cls, size=1):
  path.write_text(PROBLEM_SOURCE.format(cls=cls, cls_snake=_snake(cls), size=size))


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
  """Restores sys.path, sys.modules and the registry after each test."""
  monkeypatch.setattr(sys, "path", list(sys.path))
  modules = set(sys.modules)
  saved = [dict(r._items) for r in (registry._PROBLEMS, registry._MODELS, registry._HPARAMS)]
  yield
  for name in set(sys.modules) - modules:
    del sys.modules[name]
  for r, items in zip((registry._PROBLEMS, registry._MODELS, registry._HPARAMS), saved):
    r._items.clear()
    r._items.update(items)


def make_package(root, name, cls):
  pkg = root / name
  pkg.mkdir()
  (pkg / "__init__.py").write_text("from . import defs\n")
  write_module(pkg / "defs.py", cls)
  return pkg


def test_split_usr_dirs():
  assert usr_dir.split_usr_dirs(None) == []
  assert usr_dir.split_usr_dirs("a, b,,a") == ["a", "b"]
  assert usr_dir.split_usr_dirs(["a,b", "c", " "]) == ["a", "b", "c"]


def test_package_directory_registers_and_twice_is_fine(tmp_path):
  pkg = make_package(tmp_path, "usr_pkg_one", "UsrPkgTask")
  assert usr_dir.import_usr_dirs([str(pkg)]) == ["usr_pkg_one"]
  assert "usr_pkg_task" in registry.list_problems()
  assert registry.hparams("usr_pkg_task_hparams").size == 1
  task = registry.problem("usr_pkg_task_rev")
  assert task.was_reversed
  # Again, by another spelling of the same path: no clash, nothing new.
  relative = os.path.relpath(str(pkg))
  assert usr_dir.import_usr_dirs(relative + "," + str(pkg) + "/") == ["usr_pkg_one"]
  # The parent is on sys.path, so the package is importable by name too.
  import usr_pkg_one.defs  # noqa: F401 pylint: disable=import-outside-toplevel,import-error
  assert registry.problem_class("usr_pkg_task").__module__ == "usr_pkg_one.defs"


def test_plain_folder_imports_every_py_file(tmp_path):
  folder = tmp_path / "plain"
  folder.mkdir()
  write_module(folder / "usr_plain_b.py", "UsrPlainB")
  # a.py imports its sibling by name (the folder goes first on sys.path).
  (folder / "usr_plain_a.py").write_text(
      "import usr_plain_helper\n" + PROBLEM_SOURCE.format(cls="UsrPlainA",
                                                           cls_snake="usr_plain_a", size=2))
  (folder / "usr_plain_helper.py").write_text("VALUE = 3\n")
  (folder / "notes.txt").write_text("not python")
  names = usr_dir.import_usr_dirs(str(folder))
  assert names == ["usr_plain_a", "usr_plain_b", "usr_plain_helper"]
  assert {"usr_plain_a", "usr_plain_b"} <= set(registry.list_problems())
  assert registry.hparams("usr_plain_a_hparams").size == 2
  assert usr_dir.import_usr_dirs([str(folder), str(folder)]) == names  # twice: fine


def test_single_py_file(tmp_path):
  write_module(tmp_path / "usr_single_file.py", "UsrSingleFile")
  assert usr_dir.import_usr_dirs(str(tmp_path / "usr_single_file.py")) == ["usr_single_file"]
  assert "usr_single_file" in registry.list_problems()


def test_dotted_module_name(tmp_path):
  make_package(tmp_path, "usr_dotted_pkg", "UsrDottedTask")
  sys.path.insert(0, str(tmp_path))
  assert usr_dir.import_usr_dirs("usr_dotted_pkg.defs") == ["usr_dotted_pkg.defs"]
  assert "usr_dotted_task" in registry.list_problems()
  # The same package by its directory afterwards: already imported, no clash.
  assert usr_dir.import_usr_dirs(str(tmp_path / "usr_dotted_pkg")) == ["usr_dotted_pkg"]


def test_several_entries_in_order(tmp_path):
  first = make_package(tmp_path, "usr_multi_one", "UsrMultiOne")
  second = tmp_path / "usr_multi_two.py"
  write_module(second, "UsrMultiTwo")
  assert usr_dir.import_usr_dirs([str(first), str(second)]) == ["usr_multi_one",
                                                                 "usr_multi_two"]


@pytest.mark.parametrize("entry", ["/no/such/dir_xyz", "no_such_module_xyz",
                                   "no_such_pkg_xyz.sub", "relative/missing"])
def test_missing_path_names_it(entry):
  with pytest.raises(ConfigError) as info:
    usr_dir.import_usr_dirs(entry)
  assert entry in str(info.value) and "no such directory" in str(info.value)
  assert isinstance(info.value, T2TUserError)


def test_empty_folder_is_an_error(tmp_path):
  with pytest.raises(ConfigError, match="no .py files"):
    usr_dir.import_usr_dirs(str(tmp_path))


def test_module_raising_on_import_shows_exception_and_file_line(tmp_path):
  folder = tmp_path / "broken"
  folder.mkdir()
  (folder / "usr_broken_mod.py").write_text(
      "X = 1\n\n"
      "def helper():\n"
      "  raise RuntimeError('boom\\nsecond line')\n\n"
      "helper()\n")
  with pytest.raises(ConfigError) as info:
    usr_dir.import_usr_dirs(str(folder))
  message = str(info.value)
  assert "RuntimeError: boom second line" in message
  assert "usr_broken_mod.py:4" in message
  assert "\n" not in message and str(folder) in message
  assert isinstance(info.value.__cause__, RuntimeError)
  assert "usr_broken_mod" not in sys.modules


def test_package_raising_on_import(tmp_path):
  pkg = tmp_path / "usr_broken_pkg"
  pkg.mkdir()
  (pkg / "__init__.py").write_text("from . import inner\n")
  (pkg / "inner.py").write_text("import not_a_real_dependency_xyz\n")
  with pytest.raises(ConfigError) as info:
    usr_dir.import_usr_dirs(str(pkg))
  message = str(info.value)
  assert "ModuleNotFoundError" in message and "not_a_real_dependency_xyz" in message
  assert "inner.py:1" in message
  assert "usr_broken_pkg" not in sys.modules


def test_syntax_error_shows_file_line(tmp_path):
  (tmp_path / "usr_syntax_bad.py").write_text("x = 1\ndef broken(:\n")
  with pytest.raises(ConfigError, match=r"SyntaxError.*usr_syntax_bad.py:2"):
    usr_dir.import_usr_dirs(str(tmp_path / "usr_syntax_bad.py"))


def test_dotted_module_raising_on_import(tmp_path):
  (tmp_path / "usr_dotted_broken.py").write_text("\n\nraise ValueError('bad config')\n")
  sys.path.insert(0, str(tmp_path))
  with pytest.raises(ConfigError, match=r"ValueError: bad config.*usr_dotted_broken.py:3"):
    usr_dir.import_usr_dirs("usr_dotted_broken")


def test_registration_clash_inside_user_code_is_reported(tmp_path):
  registry.register_problem("usr_clash_task")(type("Other", (), {}))
  (tmp_path / "usr_clash_mod.py").write_text(
      "from t2t_lite import registry\n"
      "@registry.register_problem\n"
      "class UsrClashTask:\n"
      "  pass\n")
  with pytest.raises(ConfigError, match="RegistrationError.*usr_clash_task.*already"):
    usr_dir.import_usr_dirs(str(tmp_path / "usr_clash_mod.py"))


def test_name_taken_by_another_module_asks_to_rename(tmp_path):
  (tmp_path / "pytest.py").write_text("X = 1\n")  # pytest is imported from elsewhere
  with pytest.raises(ConfigError, match="'pytest'.*already imported.*Rename"):
    usr_dir.import_usr_dirs(str(tmp_path / "pytest.py"))


def test_standard_library_name_asks_to_rename(tmp_path):
  folder = tmp_path / "shadow"
  folder.mkdir()
  (folder / "antigravity.py").write_text("X = 1\n")  # stdlib, and never imported by tests
  with pytest.raises(ConfigError, match="standard-library.*Rename"):
    usr_dir.import_usr_dirs(str(folder))
