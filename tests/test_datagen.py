"""t2t-datagen and user problems from --t2t_usr_dir."""
import io
import os
import subprocess
import sys
import textwrap

import pytest

import problems  # noqa: F401
from t2t_lite import registry
from t2t_lite.bin import t2t_datagen
from t2t_lite.data import ModeKeys
from t2t_lite.hparams import HParams

USR_PROBLEM = textwrap.dedent('''
    """A user problem: count up from a random start."""
    from t2t_lite import registry
    from problems.algorithmic import AlgorithmicProblem


    @registry.register_problem
    class UsrCountUp(AlgorithmicProblem):
      num_symbols = 12
      train_size = 120
      dev_size = 20
      test_size = 4
      num_train_shards = 2

      def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
        for _ in range(nbr_cases):
          start = int(rng.integers(0, nbr_symbols - 1))
          seq = [2 + (start + i) % nbr_symbols for i in range(int(rng.integers(1, 5)))]
          yield {"inputs": seq[:1], "targets": seq}
''')


def test_user_problem_from_usr_dir(tmp_path):
  from t2t_lite import usr_dir
  usr = tmp_path / "my_usr"
  usr.mkdir()
  (usr / "__init__.py").write_text("from . import count_up  # noqa\n")
  (usr / "count_up.py").write_text(USR_PROBLEM)
  usr_dir.import_usr_dirs([str(usr)])
  try:
    p = registry.problem("usr_count_up")
    d = str(tmp_path / "data")
    out = io.StringIO()
    written, _ = t2t_datagen.generate(p, d, str(tmp_path / "tmp"), out=out)
    assert written == 144
    assert "usr_count_up-train-{00000..00001}-of-00002" in out.getvalue()
    assert p.data_exists(d)
    batch = next(iter(p.dataset(ModeKeys.TRAIN, d, HParams(batch_size=64), seed=0)))
    assert batch["targets"].shape[1] == 8  # the first bucket (min_length_bucket)
    assert ((batch["targets"].numpy() > 0).sum(1) <= 5).all()
    # A second run keeps the complete shards.
    written2, _ = t2t_datagen.generate(p, d, str(tmp_path / "tmp"), out=io.StringIO())
    assert written2 == 0
  finally:
    registry.unregister("problem", "usr_count_up")


def test_overwrite_and_seed_regenerate(tmp_path):
  p = registry.problem("tiny_algo")
  d = str(tmp_path)
  t2t_datagen.generate(p, d, d, out=io.StringIO())
  path = os.path.join(d, "tiny_algo-train-00000-of-00002")
  before = open(path, "rb").read()
  out = io.StringIO()
  n, _ = t2t_datagen.generate(registry.problem("tiny_algo"), d, d, overwrite=True,
                              random_seed=99, out=out)
  assert n == 1200 and "removed 4 old files" in out.getvalue()
  assert "examples/s" in out.getvalue()
  assert open(path, "rb").read() != before


def test_following_the_corrupt_shard_advice_repairs_the_data(tmp_path):
  """The CorruptDataError's advice: delete the shard it names and run t2t-datagen again."""
  from t2t_lite.errors import CorruptDataError
  p = registry.problem("tiny_algo")
  d = str(tmp_path)
  t2t_datagen.generate(p, d, d, out=io.StringIO())
  path = os.path.join(d, "tiny_algo-train-00001-of-00002")
  good = open(path, "rb").read()
  with open(path, "r+b") as f:
    f.seek(len(good) // 2)
    f.write(b"\x00" * 32)
  with pytest.raises(CorruptDataError) as e:
    for _ in p.dataset(ModeKeys.TRAIN, d, HParams(batch_size=256), repeat=False):
      pass
  assert path in str(e.value) and "t2t-datagen --problem=tiny_algo --data_dir=%s" % d in str(
      e.value)
  os.remove(path)
  n, _ = t2t_datagen.generate(p, d, d, out=io.StringIO())
  assert n > 0 and open(path, "rb").read() == good
  assert p.check_shards(d)["train"] == 1000


def _run(script_env, repo_root, *args):
  return subprocess.run([sys.executable, os.path.join(repo_root, "scripts", "t2t_datagen.py")]
                        + list(args), capture_output=True, text=True, env=script_env,
                        timeout=120)


@pytest.mark.slow
def test_script_generates_and_reports(script_env, repo_root, tmp_path):
  d = str(tmp_path / "data")
  r = _run(script_env, repo_root, "--problem=tiny_algo,tiny_algo_rev", "--data_dir=" + d,
           "--tmp_dir=" + str(tmp_path / "tmp"))
  assert r.returncode == 0, r.stderr
  assert "1200 examples written" in r.stdout and "examples/s" in r.stdout
  assert d in r.stdout
  assert sorted(os.listdir(d)) == ["tiny_algo-dev-00000-of-00001", "tiny_algo-test-00000-of-00001",
                                   "tiny_algo-train-00000-of-00002",
                                   "tiny_algo-train-00001-of-00002"]


@pytest.mark.slow
def test_script_user_errors_are_one_line_exit_2(script_env, repo_root, tmp_path):
  r = _run(script_env, repo_root, "--problem=tiny_alog", "--data_dir=" + str(tmp_path))
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [r.stderr.strip()]
  assert "t2t-datagen: error:" in r.stderr and "tiny_algo" in r.stderr


def test_unwritable_data_dir_is_a_user_error(tmp_path):
  from t2t_lite.errors import ConfigError, T2TUserError
  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  with pytest.raises(ConfigError, match="not writable") as e:
    t2t_datagen._check_writable(str(blocker / "sub"))  # pylint: disable=protected-access
  assert isinstance(e.value, T2TUserError)
