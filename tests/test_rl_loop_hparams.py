"""The model-based loop's hparams: the registered sets, their checks and loop_hparams.json."""
import json
import os
import subprocess
import sys

import pytest

from t2t_lite import constants
from t2t_lite import registry
from t2t_lite.errors import ConfigError
from t2t_lite.rl import loop_hparams


def test_importing_t2t_lite_rl_registers_the_sets_without_tensorflow(repo_root):
  code = ("import sys; import t2t_lite.rl; from t2t_lite import registry; "
          "print(sorted(n for n in registry.list_hparams() if n.startswith('rlmb_')), "
          "'tensorflow' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=repo_root, timeout=60)
  assert result.stdout.strip() == "['rlmb_base', 'rlmb_small', 'rlmb_tiny'] False", result.stderr


@pytest.mark.parametrize("name, value, message", [
    ("epochs", 0, "epochs=0"), ("num_real_env_frames", 0, "num_real_env_frames=0"),
    ("dev_fraction", 1.0, "dev_fraction=1.0"), ("world_model_train_steps", -1, ">= 0")])
def test_check_loop_hparams(name, value, message):
  hparams = registry.hparams("rlmb_tiny")
  loop_hparams.check_loop_hparams(hparams)
  hparams.set_hparam(name, value)
  with pytest.raises(ConfigError, match=message):
    loop_hparams.check_loop_hparams(hparams)


def test_loop_hparams_json_is_saved_then_checked_strictly(tmp_path):
  out = str(tmp_path)
  path = os.path.join(out, constants.LOOP_HPARAMS_FILENAME)
  hparams = registry.hparams("rlmb_tiny")
  loop_hparams.save_or_check_loop_hparams(out, hparams)
  with open(path) as f:
    assert json.load(f) == hparams.values()
  assert os.listdir(out) == ["loop_hparams.json"]  # no temporary file left
  loop_hparams.save_or_check_loop_hparams(out, registry.hparams("rlmb_tiny"))  # the same
  # hparams.json's comparison: 200 and 200.0 differ (the old check took them as equal).
  other = registry.hparams("rlmb_tiny")
  other.num_real_env_frames = 200.0
  with pytest.raises(ConfigError, match=r"num_real_env_frames: saved 200, new 200\.0"):
    loop_hparams.save_or_check_loop_hparams(out, other)
  other = registry.hparams("rlmb_tiny")
  other.new_setting = 3
  with pytest.raises(ConfigError, match=r"new_setting: saved \(absent\), new 3"):
    loop_hparams.save_or_check_loop_hparams(out, other)
  loop_hparams.save_or_check_loop_hparams(out, other, overwrite=True)
  with open(path) as f:
    assert json.load(f)["new_setting"] == 3


def test_an_invalid_loop_hparams_json_is_a_config_error(tmp_path):
  with open(os.path.join(str(tmp_path), "loop_hparams.json"), "w") as f:
    f.write("[1, 2")
  with pytest.raises(ConfigError, match="loop_hparams.json is not a valid hparams file"):
    loop_hparams.save_or_check_loop_hparams(str(tmp_path), registry.hparams("rlmb_tiny"))
