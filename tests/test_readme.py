"""README's promises that code can check: the Quick start block and the registry table."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import registry_table  # noqa: E402


def readme():
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    return f.read()


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
  section = readme().split("## Quick start", 1)[1]
  block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
  lines = [l for l in block.splitlines() if l.strip()]
  assert len(lines) == 2
  assert lines[0].endswith("demo") and lines[1].endswith("test")
  script = os.path.join(ROOT, lines[1].split()[1])
  assert os.path.exists(script)
  with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
    ci = f.read()
  assert "## Quick start" in ci and "lines[1]" in ci


def test_registry_table_matches_the_registry():
  text = readme()
  assert registry_table.render(text) == text, (
      "README.md's registry table is out of date: run python scripts/registry_table.py")


def test_every_builtin_is_in_the_table():
  from t2t_lite import registry
  text = readme()
  import problems  # noqa: F401  pylint: disable=unused-import
  import t2t_lite.models  # noqa: F401  pylint: disable=unused-import
  for name in registry.list_problems() + registry.list_models() + registry.list_hparams():
    obj = (registry.problem_class(name) if name in registry.list_problems() else
           registry.model(name) if name in registry.list_models() else
           registry.hparams_function(name))
    if registry_table._builtin(obj):  # pylint: disable=protected-access
      assert "`%s`" % name in text


def test_quickstart_rejects_an_unknown_job():
  out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "quickstart.sh"), "dance"],
                       capture_output=True, text=True)
  assert out.returncode == 2
  assert "unknown job 'dance'" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_layers_example_runs_and_round_trips(tmp_path, monkeypatch):
  section = readme().split("## Use the layers in your own Keras model", 1)[1]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  monkeypatch.chdir(tmp_path)
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  import keras
  import numpy as np
  loaded = keras.models.load_model(str(tmp_path / "model.keras"))
  x = np.random.default_rng(0).random((2, 5, 64)).astype("float32")
  np.testing.assert_allclose(loaded(x), namespace["model"](x), rtol=1e-6, atol=1e-6)
