"""Faults in the output directory, injected for real: damaged checkpoints and failed writes.

A checkpoint that does not restore (bytes overwritten in its data file, its index cut short,
its data shard gone) is blamed on itself, never on the data: the trainer moves it aside and
resumes from the newest one that restores; the decoder and the evaluators skip it. A write that
fails (here: a file-size limit on the process, as a full disk would) ends in one line and exit
code 3, with the complete checkpoints kept and nothing half-written left behind.
"""
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest

import problems  # noqa: F401  (registers tiny_algo)
import t2t_lite.models  # noqa: F401
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.errors import CheckpointUnreadableError, OutputWriteError
from t2t_lite.flags import create_hparams
from t2t_lite.task import Task
from t2t_lite.training import Trainer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBLEM = "tiny_algo"
TINY = ("hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=1,batch_size=64,"
        "layer_prepostprocess_dropout=0.0,attention_dropout=0.0,relu_dropout=0.0")
WAIT = 300


def hparams():
  return create_hparams("transformer_tiny", TINY, problem_name=PROBLEM)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """tiny_algo data and a run with checkpoints at steps 4 and 8, as t2t-trainer leaves it."""
  root = tmp_path_factory.mktemp("faults")
  data_dir, output_dir = str(root / "data"), str(root / "train")
  registry.problem(PROBLEM).generate_data(data_dir, str(root / "tmp"))
  hp = hparams()
  output_dir_lib.save_or_check_hparams(output_dir, hp)
  Trainer(PROBLEM, "transformer", hp, data_dir, output_dir, train_steps=8,
          save_checkpoints_steps=4, random_seed=3).run("train")
  return {"data_dir": data_dir, "output_dir": output_dir}


@pytest.fixture
def out(run, tmp_path):
  """A fresh copy of the run's output_dir for one test to damage."""
  path = str(tmp_path / "train")
  shutil.copytree(run["output_dir"], path)
  return path


def digests(directory):
  """{file name: sha256} of the files in a directory (recursively)."""
  found = {}
  for folder, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return found


def overwrite_middle(path, size=4096):
  with open(path, "r+b") as f:
    f.seek(max(0, os.path.getsize(path) // 2 - size // 2))
    f.write(b"\xa5" * size)


def truncate_half(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


DAMAGE = {
    "data_overwritten": lambda ckpt: overwrite_middle(ckpt + ".data-00000-of-00001"),
    "index_truncated": lambda ckpt: truncate_half(ckpt + ".index"),
    "data_truncated": lambda ckpt: truncate_half(ckpt + ".data-00000-of-00001"),
    "data_removed": lambda ckpt: os.remove(ckpt + ".data-00000-of-00001"),
}


def script(name, *args, file_size_limit=None):
  """Runs scripts/NAME in a subprocess; with `file_size_limit` (bytes), no file it writes may
  grow past that size (writes beyond it fail with EFBIG, as on a full disk)."""
  def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("T2T_TRACEBACK", None)
  return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", name)] + list(args),
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=WAIT,
                        preexec_fn=limit if file_size_limit else None)


def trainer_args(run, out, train_steps):
  return ["--problem=" + PROBLEM, "--model=transformer", "--hparams_set=transformer_tiny",
          "--hparams=" + TINY, "--data_dir=" + run["data_dir"], "--output_dir=" + out,
          "--train_steps=%d" % train_steps, "--save_checkpoints_steps=4", "--schedule=train",
          "--random_seed=3", "--log_step_count_steps=1"]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_trainer_moves_a_bad_checkpoint_aside_and_resumes_from_the_good_one(run, out, damage,
                                                                            capsys):
  DAMAGE[damage](os.path.join(out, "ckpt-8"))
  before = digests(out)
  trainer = Trainer(PROBLEM, "transformer", hparams(), run["data_dir"], out, train_steps=12,
                    save_checkpoints_steps=4, random_seed=3)
  assert trainer.restore(with_data=True) == os.path.join(out, "ckpt-4")
  assert int(trainer.global_step.numpy()) == 4
  printed = capsys.readouterr().out
  assert "checkpoint %s does not restore" % os.path.join(out, "ckpt-8") in printed
  assert "moved it aside" in printed and "overwrite" not in printed
  after = digests(out)
  # Nothing removed: every file is still there, the bad ones under their new name.
  # Nothing removed: every file's bytes are still there (the bad ones under a new name); only
  # the checkpoint state file is rewritten.
  assert {d for name, d in before.items() if name != "checkpoint"} <= set(after.values())
  moved = [name for name in after if ".bad-" in name]
  assert moved and all(name.startswith("ckpt-8.bad-") for name in moved)
  for name in ("ckpt-4.index", "ckpt-4.data-00000-of-00001"):
    assert after[name] == before[name]
  assert output_dir_lib.checkpoint_paths(out) == [os.path.join(out, "ckpt-4")]

  trainer.run("train")  # goes on from step 4 with its optimizer and data position
  assert output_dir_lib.latest_checkpoint(out) == os.path.join(out, "ckpt-12")


def test_trainer_script_resumes_past_a_bad_checkpoint_and_blames_no_data(run, out):
  overwrite_middle(os.path.join(out, "ckpt-8.data-00000-of-00001"))
  proc = script("t2t_trainer.py", *trainer_args(run, out, 10))
  assert proc.returncode == 0, proc.stderr[-3000:]
  steps = [int(line.split("step ")[1].split("/")[0]) for line in proc.stderr.splitlines()
           if " step " in line and "/10 loss" in line]
  assert steps and steps[0] == 5, proc.stderr[-3000:]  # resumed from ckpt-4, not from 0
  assert "ckpt-8 does not restore" in proc.stdout and "moved it aside" in proc.stdout
  assert "regenerate" not in proc.stdout + proc.stderr
  assert "--overwrite" not in proc.stdout + proc.stderr


def test_no_checkpoint_restores_one_line_exit_2(run, out):
  for step in (4, 8):
    overwrite_middle(os.path.join(out, "ckpt-%d.data-00000-of-00001" % step))
  proc = script("t2t_trainer.py", *trainer_args(run, out, 12))
  assert proc.returncode == 2, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]  # after the log: the one error line
  assert last.startswith("t2t-trainer: error: no checkpoint in %s restores: ckpt-8 (" % out)
  assert "; ckpt-4 (" in last and "moved aside" in last and "--overwrite" not in last
  assert "Traceback" not in proc.stderr
  names = [n for n in os.listdir(out) if n.endswith((".index", ".data-00000-of-00001"))]
  assert sum(name.startswith("ckpt-8.bad-") for name in names) == 2  # index and data, kept
  assert sum(name.startswith("ckpt-4.bad-") for name in names) == 2


def test_decoder_and_evaluator_skip_a_bad_checkpoint_without_moving_it(run, out, capsys):
  truncate_half(os.path.join(out, "ckpt-8.index"))
  before = digests(out)
  task = Task(PROBLEM, "transformer", hparams(), run["data_dir"])
  _, path = task.restore_for_inference(out)
  assert path == os.path.join(out, "ckpt-4")
  assert "skipping checkpoint %s" % os.path.join(out, "ckpt-8") in capsys.readouterr().out

  trainer = Trainer(PROBLEM, "transformer", hparams(), run["data_dir"], out, train_steps=8,
                    random_seed=3)
  results = trainer.run("evaluate", eval_steps=2)
  assert results["global_step"] == 4
  assert digests(out).items() >= before.items()  # nothing renamed or removed

  proc = script("t2t_decoder.py", "--problem=" + PROBLEM, "--model=transformer",
                "--output_dir=" + out, "--data_dir=" + run["data_dir"],
                "--decode_hparams=beam_size=1,num_samples=4,log_results=false")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "with ckpt-4" in proc.stdout and "skipping checkpoint" in proc.stdout


def test_continuous_eval_skips_a_bad_checkpoint(run, out, capsys):
  overwrite_middle(os.path.join(out, "ckpt-8.data-00000-of-00001"))
  trainer = Trainer(PROBLEM, "transformer", hparams(), run["data_dir"], out, train_steps=8,
                    random_seed=3, continuous_eval_timeout=1)
  assert trainer.continuous_eval(eval_steps=2) == {}  # the only new checkpoint is bad
  assert "skipping checkpoint %s" % os.path.join(out, "ckpt-8") in capsys.readouterr().out


def test_all_checkpoints_unreadable_for_the_decoder_is_one_clear_error(run, out):
  for step in (4, 8):
    os.remove(os.path.join(out, "ckpt-%d.data-00000-of-00001" % step))
  task = Task(PROBLEM, "transformer", hparams(), run["data_dir"])
  with pytest.raises(CheckpointUnreadableError, match="no checkpoint in .* restores: ckpt-8"):
    task.restore_for_inference(out)


def test_checkpoint_write_failure_is_one_line_exit_3_and_keeps_the_good_ones(run, out):
  data = os.path.join(out, "ckpt-8.data-00000-of-00001")
  before = digests(out)
  limit = os.path.getsize(data) // 2  # small files (hparams, flags, logs) still fit
  proc = script("t2t_trainer.py", *trainer_args(run, out, 12), file_size_limit=limit)
  assert proc.returncode == 3, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("t2t-trainer: error: could not write checkpoint %s" %
                         os.path.join(out, "ckpt-12")), proc.stderr[-3000:]
  assert "File too large" in last and " free there" in last and "ckpt-8, is kept" in last
  assert "Traceback" not in proc.stderr
  after = digests(out)
  for name, digest in before.items():
    if name.startswith("ckpt-"):
      assert after[name] == digest  # the complete checkpoints are untouched
  assert not [n for n in os.listdir(out) if n.startswith("ckpt-12") or "_temp" in n]
  assert output_dir_lib.latest_checkpoint(out) == os.path.join(out, "ckpt-8")


def test_export_write_failure_is_one_line_exit_3_and_leaves_nothing(run, out):
  export_dir = os.path.join(out, "export_decoder")
  proc = script("t2t_decoder.py", "--problem=" + PROBLEM, "--model=transformer",
                "--output_dir=" + out, "--data_dir=" + run["data_dir"], "--export_saved_model",
                "--decode_hparams=beam_size=1", file_size_limit=2048)
  assert proc.returncode == 3, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("t2t-decoder: error: could not write the SavedModel %s" % export_dir)
  assert "Traceback" not in proc.stderr
  assert not [n for n in os.listdir(out) if n.startswith("export_decoder")]


def test_atomic_write_failure_keeps_the_old_file_and_no_temporary(tmp_path):
  path = tmp_path / "eval_results.json"
  path.write_text('{"accuracy": 0.5}\n')
  code = ("import sys; from t2t_lite import output_dir as o\n"
          "try:\n"
          "  o.write_json_atomically(sys.argv[1], {'x': 'y' * 100000}, 'the evaluation results')\n"
          "except o.OutputWriteError as e:\n"
          "  print(e); sys.exit(3)\n")

  def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

  proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=WAIT, preexec_fn=limit,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 3, proc.stderr[-3000:]
  assert proc.stdout.startswith("could not write the evaluation results %s" % path)
  assert "the previous eval_results.json is kept" in proc.stdout
  assert path.read_text() == '{"accuracy": 0.5}\n'
  assert os.listdir(tmp_path) == ["eval_results.json"]


def test_output_write_error_is_a_user_error_with_exit_code_3():
  from t2t_lite.errors import T2TUserError
  assert issubclass(OutputWriteError, T2TUserError) and OutputWriteError.exit_code == 3


def test_datagen_write_failure_is_one_line_exit_3_and_leaves_no_partial_shard(tmp_path):
  data_dir = str(tmp_path / "data")
  proc = script("t2t_datagen.py", "--problem=" + PROBLEM, "--data_dir=" + data_dir,
                "--tmp_dir=" + str(tmp_path / "tmp"), file_size_limit=1024)
  assert proc.returncode == 3, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("t2t-datagen: error: could not write the data shards %s/%s-" % (
      data_dir, PROBLEM)), proc.stderr[-3000:]
  assert "File too large" in last and "free there" in last and "are kept" in last
  assert "Traceback" not in proc.stderr
  leftovers = [n for n in os.listdir(data_dir) if "incomplete" in n or ".tmp" in n]
  assert not leftovers
