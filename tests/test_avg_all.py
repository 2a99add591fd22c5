"""t2t-avg-all and `t2t_lite.training.averaging`: every averaged variable is the mean of the
last N checkpoints, the result restores and decodes like any run, and bad input fails cleanly.

The run is a tiny transformer trained 4 steps on tiny_algo with a checkpoint at every step.
"""
import glob
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

import problems  # noqa: F401  (registers tiny_algo)
import t2t_lite.flags as t2t_flags
import t2t_lite.models  # noqa: F401
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.bin import t2t_avg_all
from t2t_lite.bin import t2t_decoder
from t2t_lite.errors import CheckpointNotFoundError, CheckpointUnreadableError, ConfigError
from t2t_lite.task import Task
from t2t_lite.training import averaging
from helpers import tiny_run

PROBLEM = "tiny_algo"
STEPS = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """OUTPUT_DIR/ckpt-1 .. ckpt-4 of a 16-wide transformer, with hparams.json and flags.txt."""
  root = tmp_path_factory.mktemp("avg_run")
  data_dir, output_dir = str(root / "data"), str(root / "train")
  problem = registry.problem(PROBLEM)
  problem.generate_data(data_dir, str(root / "tmp"))
  hparams, _ = tiny_run.train_tiny_transformer(PROBLEM, data_dir, output_dir, STEPS,
                                               save_checkpoints_steps=1, hparams="batch_size=256")
  return {"root": root, "data_dir": data_dir, "output_dir": output_dir, "hparams": hparams}


def copy_of(run, tmp_path):
  copy = str(tmp_path / "train")
  shutil.copytree(run["output_dir"], copy)
  return copy


def values(path, prefix="model/"):
  reader = tf.train.load_checkpoint(path)
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(prefix)}


def write_state(model_dir, steps):
  """Lists only ckpt-STEP of `steps` (oldest first) in model_dir's checkpoint state."""
  names = ["ckpt-%d" % s for s in steps]
  with open(os.path.join(model_dir, "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "%s"\n' % names[-1])
    f.writelines('all_model_checkpoint_paths: "%s"\n' % n for n in names)


def restored_weights(run, checkpoints):
  """The model's weights restored (as Task.restore_for_inference does) from each checkpoint,
  one model built for all."""
  task = Task(PROBLEM, "transformer", output_dir_lib.load_hparams(run["output_dir"]),
              run["data_dir"])
  model, _ = task.restore_for_inference(os.path.dirname(checkpoints[0]), checkpoints[0])
  weights = []
  for path in checkpoints:
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    weights.append([(w.path, w.numpy()) for w in model.weights])
  return weights


def test_every_averaged_variable_is_the_mean_of_the_inputs(run, tmp_path):
  inputs = output_dir_lib.checkpoint_paths(run["output_dir"])[:3]
  assert [os.path.basename(p) for p in inputs] == ["ckpt-4", "ckpt-3", "ckpt-2"]
  path = averaging.average_checkpoints(run["output_dir"], 3, str(tmp_path / "avg"))
  assert path == str(tmp_path / "avg" / "ckpt-4")

  # Every float weight of the model, restored from the average, is the mean of the three.
  averaged, *per_input = restored_weights(run, [path] + inputs)
  floats = 0
  for i, (name, value) in enumerate(averaged):
    if not np.issubdtype(value.dtype, np.floating):
      continue
    floats += 1
    stacked = np.stack([weights[i][1] for weights in per_input])
    want = stacked.astype(np.float64).mean(axis=0).astype(value.dtype)
    np.testing.assert_array_equal(value, want, err_msg=name)
    assert not np.array_equal(stacked[0], stacked[2]), name  # they did change in training

  # The checkpoint holds exactly those (under model/), the newest step and save_counter.
  in_file = values(path, prefix="")
  model_keys = [k for k in in_file if k.startswith("model/")]
  assert len(model_keys) == floats > 10
  assert all(in_file[k].dtype == np.float32 for k in model_keys)
  assert in_file["step/.ATTRIBUTES/VARIABLE_VALUE"] == STEPS
  assert sorted(set(in_file) - set(model_keys)) == [
      "_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
      "step/.ATTRIBUTES/VARIABLE_VALUE"]


def test_the_average_restores_for_inference_and_decodes(run, tmp_path, capsys):
  avg_dir = str(tmp_path / "avg")
  path = averaging.average_checkpoints(run["output_dir"], 2, avg_dir)
  assert output_dir_lib.checkpoint_paths(avg_dir) == [path]
  assert output_dir_lib.read_saved_hparams(avg_dir) == output_dir_lib.read_saved_hparams(
      run["output_dir"])
  with open(os.path.join(avg_dir, "flags.txt")) as f:
    assert f.read() == "--model=transformer\n"

  task = Task(PROBLEM, "transformer", output_dir_lib.load_hparams(avg_dir), run["data_dir"])
  model, restored = task.restore_for_inference(avg_dir)
  assert restored == path
  resaved = tf.train.Checkpoint(model=model).write(str(tmp_path / "resaved" / "ckpt"))
  got, want = values(resaved), values(path)
  assert set(got) == set(want)
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)

  inputs, outputs = tmp_path / "inputs.txt", tmp_path / "outputs.txt"
  inputs.write_text("1 0 1 1\n0 1\n")
  was_parsed = flags.FLAGS.is_parsed()
  if not was_parsed:
    flags.FLAGS.mark_as_parsed()
  try:
    with flagsaver.flagsaver(problem=PROBLEM, model="transformer", output_dir=avg_dir,
                             data_dir=run["data_dir"], decode_from_file=str(inputs),
                             decode_to_file=str(outputs), decode_hparams="beam_size=1"):
      assert t2t_decoder.main(["t2t-decoder"]) == 0
  finally:
    if not was_parsed:
      flags.FLAGS.unparse_flags()
  assert "Decoded 2 lines" in capsys.readouterr().out
  assert len(outputs.read_text().splitlines()) == 2


def test_script_defaults_to_model_dir_avg(run, tmp_path, capsys):
  model_dir = copy_of(run, tmp_path)
  was_parsed = flags.FLAGS.is_parsed()
  if not was_parsed:
    flags.FLAGS.mark_as_parsed()
  try:
    with flagsaver.flagsaver(model_dir=model_dir, n=4, output_dir=None, min_steps=-1,
                             wait_minutes=0):
      assert t2t_avg_all.main(["t2t-avg-all"]) == 0
  finally:
    if not was_parsed:
      flags.FLAGS.unparse_flags()
  want = os.path.join(model_dir, "avg", "ckpt-4")
  assert capsys.readouterr().out == "Averaged the last 4 checkpoints of %s into %s\n" % (
      model_dir, want)
  assert output_dir_lib.checkpoint_paths(os.path.join(model_dir, "avg")) == [want]
  # The run's own checkpoints are untouched.
  assert len(output_dir_lib.checkpoint_paths(model_dir)) == STEPS


def test_follow_averages_each_new_checkpoint(run, tmp_path):
  model_dir = copy_of(run, tmp_path)
  avg_dir = str(tmp_path / "avg")
  write_state(model_dir, [1])
  following = averaging.follow_and_average(model_dir, 2, avg_dir, wait_secs=1, max_to_keep=2)
  # The second checkpoint "appears" while it waits: now there are n.
  threading.Timer(0.5, write_state, (model_dir, [1, 2])).start()
  assert next(following) == os.path.join(avg_dir, "ckpt-2")
  write_state(model_dir, [1, 2, 3])
  assert next(following) == os.path.join(avg_dir, "ckpt-3")
  write_state(model_dir, [1, 2, 3, 4])
  assert next(following) == os.path.join(avg_dir, "ckpt-4")
  assert list(following) == []  # no new checkpoint within wait_secs
  assert [os.path.basename(p) for p in output_dir_lib.checkpoint_paths(avg_dir)] == [
      "ckpt-4", "ckpt-3"]  # max_to_keep
  assert not glob.glob(os.path.join(avg_dir, "ckpt-2*"))
  # ckpt-3 of the follower is the one-shot average of the last 2 when ckpt-3 was the newest.
  write_state(model_dir, [1, 2, 3])
  once = averaging.average_checkpoints(model_dir, 2, str(tmp_path / "once"))
  followed, want = values(os.path.join(avg_dir, "ckpt-3"), ""), values(once, "")
  assert set(followed) == set(want)
  for key in want:
    np.testing.assert_array_equal(followed[key], want[key], err_msg=key)

  with pytest.raises(ConfigError, match="fewer checkpoints than asked"):
    list(averaging.follow_and_average(model_dir, 9, str(tmp_path / "avg9"), wait_secs=1))


def test_bad_input_is_a_user_error(run, tmp_path):
  with pytest.raises(ConfigError, match=r"averaging fewer checkpoints than asked: --n=5, but "
                                        r".* has only 4 \(ckpt-4, ckpt-3, ckpt-2, ckpt-1\)"):
    averaging.average_checkpoints(run["output_dir"], 5, str(tmp_path / "avg5"))
  assert not os.path.exists(tmp_path / "avg5")
  with pytest.raises(ConfigError, match="fewer checkpoints than asked.*at least --min_steps=3"):
    averaging.average_checkpoints(run["output_dir"], 3, str(tmp_path / "avg5"), min_steps=3)
  with pytest.raises(CheckpointNotFoundError, match="no checkpoint in --model_dir="):
    averaging.average_checkpoints(str(tmp_path / "empty"), 2)
  with pytest.raises(ConfigError, match="--n=0"):
    averaging.average_checkpoints(run["output_dir"], 0)
  with pytest.raises(ConfigError, match="is --model_dir"):
    averaging.average_checkpoints(run["output_dir"], 2, run["output_dir"])

  other = str(tmp_path / "other_avg")
  output_dir_lib.save_or_check_hparams(other, t2t_flags.create_hparams("transformer_tiny"))
  with pytest.raises(ConfigError, match="averages of another run"):
    averaging.average_checkpoints(run["output_dir"], 2, other)

  model_dir = copy_of(run, tmp_path)
  data = glob.glob(os.path.join(model_dir, "ckpt-3.data-*"))[0]
  with open(data, "r+b") as f:
    f.truncate(64)
  with pytest.raises(CheckpointUnreadableError, match=r"cannot read checkpoint .*ckpt-3 "):
    averaging.average_checkpoints(model_dir, 3)
  assert averaging.average_checkpoints(model_dir, 1).endswith("ckpt-4")  # ckpt-3 not read


def test_script_error_is_one_line_and_exit_2(run, script_env, repo_root):
  proc = subprocess.run(
      [sys.executable, os.path.join(repo_root, "scripts", "t2t_avg_all.py"),
       "--model_dir=" + run["output_dir"], "--n=8"],
      env=script_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith("t2t-avg-all: error: averaging fewer checkpoints than asked: "
                             "--n=8, but %s has only 4" % run["output_dir"])
