"""The docs name only things that exist: every path, flag, script and registered name that
README.md, docs/ARCHITECTURE.md and docs/HISTORY.md mention is checked against the code."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("README.md", os.path.join("docs", "ARCHITECTURE.md"),
        os.path.join("docs", "HISTORY.md"))

# Names the docs use on purpose although nothing defines them: the troubleshooting table's
# misspellings, README's own user-defined example, placeholders, tensor2tensor's flag names
# in the table of differences, generic command-line options, and files docs/HISTORY.md's
# record of earlier runs names that are gone since.
NOT_DEFINED_HERE = {
    "problem": {"tiny_alog", "reverse_words", "P"},
    "model": {"transfromer", "M"},
    "hparams_set": {"transformer_tinny", "H"},
    "flag": {"help", "flagfile", "master", "cloud_tpu_name", "hp_", "hp_k"},
    "path": {"PATH/my_defs.py", "my_problems/reverse_words.py",
             "benchmarks/peer_packing.py"},
}


def _text(name):
  with open(os.path.join(ROOT, name), encoding="utf-8") as f:
    return f.read()


def _tracked_files():
  out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                       cwd=ROOT, capture_output=True, text=True)
  if out.returncode != 0:  # not a git checkout: walk the tree
    return [os.path.relpath(os.path.join(d, f), ROOT) for d, _, files in os.walk(ROOT)
            for f in files if ".git" not in d and ".venv" not in d]
  return out.stdout.split()


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_the_docs_name_exists(doc):
  files = _tracked_files() + [os.path.relpath(os.path.join(d, f), ROOT)
                              for d, _, fs in os.walk(os.path.join(ROOT, "t2t_lite"))
                              for f in fs]
  missing = []
  for path in sorted(set(re.findall(r"[A-Za-z0-9_./-]+\.(?:py|md|sh)\b", _text(doc)))):
    path = path.lstrip("./")
    if path in NOT_DEFINED_HERE["path"]:
      continue
    if not any(f == path or f.endswith("/" + path) for f in files):
      missing.append(path)
  assert not missing, "%s names files that do not exist: %s" % (doc, missing)


def _defined_flags():
  """The flags of every script (importing a script's module defines its flags)."""
  import importlib
  import pkgutil

  from absl import flags

  import t2t_lite.bin
  for module in pkgutil.iter_modules(t2t_lite.bin.__path__):
    importlib.import_module("t2t_lite.bin." + module.name)
  return set(flags.FLAGS)


@pytest.mark.parametrize("doc", DOCS)
def test_every_flag_the_docs_name_is_defined(doc):
  defined = _defined_flags()
  benchmarks = "".join(_text(os.path.join("benchmarks", f))
                       for f in os.listdir(os.path.join(ROOT, "benchmarks")) if f.endswith(".py"))
  missing = []
  for name in sorted(set(re.findall(r"(?<![\w-])--([a-z][a-z0-9_]*)", _text(doc)))):
    if name in defined or name in NOT_DEFINED_HERE["flag"] or name.startswith("hp_"):
      continue
    if '"--%s"' % name in benchmarks:  # a benchmark's own option (python -m benchmarks.X)
      continue
    missing.append("--" + name)
  assert not missing, "%s names flags no script defines: %s" % (doc, missing)


@pytest.mark.parametrize("doc", DOCS)
def test_every_script_the_docs_name_is_installed(doc):
  setup = _text("setup.py")
  scripts = set(re.findall(r'"(t2t-[a-z-]+)=', setup))
  named = set(re.findall(r"(?<![\w/.-])(t2t-[a-z-]+)", _text(doc))) - {"t2t-lite"}
  assert named <= scripts, "%s names scripts setup.py does not install: %s" % (
      doc, sorted(named - scripts))


@pytest.mark.parametrize("doc", DOCS)
def test_every_registered_name_the_docs_use_exists(doc):
  import problems  # noqa: F401  pylint: disable=unused-import
  import t2t_lite.models  # noqa: F401  pylint: disable=unused-import
  import t2t_lite.rl  # noqa: F401  pylint: disable=unused-import
  from t2t_lite import registry
  text = _text(doc)
  known = {"problem": registry.list_problems(), "model": registry.list_models(),
           "hparams_set": registry.list_hparams()}
  missing = []
  for kind, flag in (("problem", "problem"), ("model", "model"),
                     ("hparams_set", "hparams_set"), ("hparams_set", "loop_hparams_set")):
    for name in set(re.findall(r"--%s=([A-Za-z0-9_]+)" % flag, text)):
      base = re.sub(r"(_rev|_copy)+$", "", name)
      if base not in known[kind] and name not in NOT_DEFINED_HERE[kind]:
        missing.append("--%s=%s" % (flag, name))
  assert not missing, "%s uses unregistered names: %s" % (doc, sorted(missing))
