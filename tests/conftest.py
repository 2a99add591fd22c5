"""Shared pytest set-up: quiet TensorFlow, seed everything, make the repo importable."""
import os
import random
import sys

# Before TensorFlow is imported anywhere: no INFO/WARNING/ERROR chatter (the CUDA probe on a
# machine without a GPU logs an ERROR line), and no oneDNN notice.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
  """Every test starts from the same seeds (Python, NumPy, and TF/Keras once imported)."""
  random.seed(0)
  np.random.seed(0)
  if "keras" in sys.modules or "tensorflow" in sys.modules:
    import keras
    keras.utils.set_random_seed(0)
  yield


@pytest.fixture
def repo_root():
  return REPO_ROOT


@pytest.fixture
def script_env():
  """Environment for running the scripts in a subprocess: quiet TF, the repo importable."""
  env = dict(os.environ)
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env
