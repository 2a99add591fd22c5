"""The model-based loop end to end: a 2-epoch tiny run, reruns, and the script's user errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import problems.world_model  # noqa: F401  (registers the world-model problems)
import t2t_lite.models  # noqa: F401  (registers the transformer)
from t2t_lite import registry
from t2t_lite.errors import ConfigError, HParamsError
from t2t_lite.rl import loop_hparams
from t2t_lite.rl import trainer_model_based as tmb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConstantModel:
  """A world model with the cached-decoding interface that predicts an empty 4x4 frame and
  reward 0 whatever it sees."""

  has_inputs = True

  def encode(self, inputs, training=False):
    return tf.zeros(tf.concat([tf.shape(inputs), [1]], 0)), tf.not_equal(inputs, 0)

  def init_decode_cache(self, batch_size, max_length, encoder_output=None, encoder_mask=None):
    return {"unused": tf.zeros([batch_size])}

  def decode_step(self, ids, cache, index):
    token = tf.where(tf.equal(index, 16), 9, 2)  # pixel value 0, then reward 0 at position 16
    return tf.one_hot(tf.fill(tf.shape(ids), token), 11), cache


def fake_train_fn(calls=None, model=None):
  """A `train_fn` that trains nothing: records its arguments, returns `model` (a
  ConstantModel by default)."""

  def train(problem, model_name, hparams, data_dir, output_dir, train_steps, eval_steps,
            schedule, random_seed):
    if calls is not None:
      calls.append(dict(problem=problem, hparams=hparams, data_dir=data_dir,
                        output_dir=output_dir, train_steps=train_steps))
    return {"accuracy": 0.5}, model or ConstantModel()

  return train


def tiny_hparams(**overrides):
  hparams = registry.hparams("rlmb_tiny")  # 4x4 grid, 1-layer 16-wide transformer
  hparams.num_real_env_frames = 120
  hparams.world_model_train_steps = 6
  hparams.world_model_eval_steps = 1
  hparams.eval_num_subsequences = 8
  for name, value in overrides.items():
    setattr(hparams, name, value)
  return hparams


def read_json(path):
  with open(path) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """One real 2-epoch run, shared by the tests that look at what it left."""
  out = str(tmp_path_factory.mktemp("rlmb"))
  records = tmb.training_loop(tiny_hparams(), out, random_seed=3)
  return out, records


def test_two_epoch_tiny_run_end_to_end(finished_run):
  out, records = finished_run
  assert [r["epoch"] for r in records] == [0, 1]
  for subdir in ("data", "tmp", "world_model", "world_model/debug_videos", "policy",
                 "eval_metrics"):
    assert os.path.isdir(os.path.join(out, subdir)), subdir
  for epoch, record in enumerate(records):
    assert read_json(os.path.join(out, "eval_metrics", "epoch_%d.json" % epoch)) == record
    metrics = record["world_model"]
    assert metrics["num_examples"] == 8
    for name in ("next_frame_error", "frame_accuracy", "reward_accuracy"):
      assert 0.0 <= metrics[name] <= 1.0
    assert record["real_env_steps"] == 60 * (epoch + 1)
    assert record["world_model_train_steps"] == 6 * (epoch + 1)
    assert record["world_model_train"]["global_step"] == 6 * (epoch + 1)
    assert "accuracy" in record["world_model_train"]
    assert record["timing"].startswith("Timing: ")
    video = os.path.join(out, "world_model", "debug_videos", "epoch_%d.txt" % epoch)
    assert "predicted reward" in open(video).read()
  # Epoch 1 trains on the rollouts of both epochs.
  assert records[1]["examples"]["train"] > records[0]["examples"]["train"]
  rollouts = sorted(os.listdir(os.path.join(out, "data", "rollouts")))
  assert rollouts == ["epoch_0-dev.tfrecord", "epoch_0-train.tfrecord",
                      "epoch_1-dev.tfrecord", "epoch_1-train.tfrecord"]
  assert read_json(os.path.join(out, "loop_hparams.json"))["epochs"] == 2


def test_rerun_skips_finished_epochs(finished_run, tmp_path):
  out, records = finished_run

  def must_not_train(*args, **kwargs):
    raise AssertionError("a finished epoch was trained again")

  assert tmb.training_loop(tiny_hparams(), out, random_seed=3, train_fn=must_not_train) == records
  # Other hparams on the same output_dir are an error, unless asked for.
  with pytest.raises(ConfigError, match="num_real_env_frames: saved 120, new 100"):
    tmb.training_loop(tiny_hparams(num_real_env_frames=100), out, train_fn=must_not_train)


def test_rerun_continues_an_interrupted_run(finished_run, tmp_path):
  """Epoch 0 finished, epoch 1 not: only epoch 1 runs again, on the same rollouts."""
  out, _ = finished_run
  import shutil
  copy = str(tmp_path / "copy")
  shutil.copytree(out, copy)
  os.remove(os.path.join(copy, "eval_metrics", "epoch_1.json"))
  rollouts_before = open(os.path.join(copy, "data", "rollouts", "epoch_1-train.tfrecord"),
                         "rb").read()
  calls = []
  records = tmb.training_loop(tiny_hparams(), copy, random_seed=3,
                              train_fn=fake_train_fn(calls))
  assert [(os.path.basename(c["data_dir"]), c["train_steps"]) for c in calls] == [
      ("epoch_1", 12)]
  assert [r["epoch"] for r in records] == [0, 1]
  assert records[1]["world_model_train"] == {"accuracy": 0.5}
  assert 0.0 < records[1]["world_model"]["next_frame_error"] < 0.5
  assert open(os.path.join(copy, "data", "rollouts", "epoch_1-train.tfrecord"),
              "rb").read() == rollouts_before


def test_loop_config_errors(tmp_path):
  with pytest.raises(ConfigError, match="epochs=0"):
    tmb.training_loop(tiny_hparams(epochs=0), str(tmp_path))
  with pytest.raises(ConfigError, match="dev_fraction"):
    tmb.training_loop(tiny_hparams(dev_fraction=0.0), str(tmp_path))
  from t2t_lite.data import Problem

  @registry.register_problem("test_rl_not_a_world_model")
  class NotAWorldModel(Problem):
    pass

  try:
    with pytest.raises(ConfigError, match="not a world-model problem"):
      tmb.training_loop(tiny_hparams(problem="test_rl_not_a_world_model"), str(tmp_path))
  finally:
    registry.unregister("problem", "test_rl_not_a_world_model")
  with pytest.raises(ConfigError, match="not a world-model problem"):
    tmb.training_loop(tiny_hparams(), str(tmp_path), problem="algorithmic_reverse_binary40")
  with pytest.raises(HParamsError):
    tmb.training_loop(tiny_hparams(world_model_hparams="no_such_hparam=3"), str(tmp_path))
  with pytest.raises(ConfigError, match="world_model=transformer_encoder cannot predict"):
    tmb.training_loop(tiny_hparams(world_model="transformer_encoder"), str(tmp_path))
  assert not os.listdir(str(tmp_path))  # all found before anything is written


def test_problem_is_a_parameter(tmp_path):
  """training_loop(problem=...) runs on another world-model problem than the set's, and
  records it; the caller's hparams are not changed."""
  calls = []
  hparams = tiny_hparams(epochs=1)
  out = str(tmp_path)
  records = tmb.training_loop(hparams, out, random_seed=1, train_fn=fake_train_fn(calls),
                              problem="world_model_bouncing_ball")
  assert hparams.problem == "world_model_bouncing_ball_tiny"
  assert [c["problem"].name for c in calls] == ["world_model_bouncing_ball"]
  assert calls[0]["hparams"].problem_name == "world_model_bouncing_ball"
  assert calls[0]["problem"].tokenizer.observation_shape == (8, 8)
  assert records[0]["world_model"]["num_examples"] == 8
  assert read_json(os.path.join(out, "loop_hparams.json"))["problem"] == (
      "world_model_bouncing_ball")
  assert read_json(os.path.join(out, "world_model", "hparams.json"))["problem_name"] == (
      "world_model_bouncing_ball")
  # The set's problem on the same output_dir is another run.
  with pytest.raises(ConfigError, match="problem: saved 'world_model_bouncing_ball', new "
                                        "'world_model_bouncing_ball_tiny'"):
    tmb.training_loop(hparams, out, train_fn=fake_train_fn())


def test_world_model_hparams_json_is_saved_and_checked(finished_run, tmp_path):
  """world_model/hparams.json, as t2t-trainer writes it: a rerun with other world-model
  hparams than the saved ones is an error, unless overwrite_hparams."""
  out, records = finished_run
  saved = read_json(os.path.join(out, "world_model", "hparams.json"))
  assert saved["hparams_set"] == "transformer_tiny" and saved["hidden_size"] == 16
  assert saved["problem_name"] == "world_model_bouncing_ball_tiny"
  import shutil
  copy = str(tmp_path / "copy")
  shutil.copytree(out, copy)
  path = os.path.join(copy, "world_model", "hparams.json")
  with open(path, "w") as f:
    json.dump(dict(saved, hidden_size=32), f)
  with pytest.raises(ConfigError, match="hidden_size: saved 32, new 16"):
    tmb.training_loop(tiny_hparams(), copy, train_fn=fake_train_fn())
  assert tmb.training_loop(tiny_hparams(), copy, train_fn=fake_train_fn(),
                           overwrite_hparams=True) == records
  assert read_json(path) == saved


def test_output_dir_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
  home, cwd = tmp_path / "home", tmp_path / "cwd"
  home.mkdir()
  cwd.mkdir()
  monkeypatch.setenv("HOME", str(home))
  monkeypatch.chdir(cwd)
  records = tmb.training_loop(tiny_hparams(epochs=1), "~/rlmb", random_seed=1,
                              train_fn=fake_train_fn())
  run = home / "rlmb"
  assert read_json(str(run / "eval_metrics" / "epoch_0.json")) == records[0]
  assert (run / "loop_hparams.json").is_file() and (run / "world_model" / "hparams.json").is_file()
  assert (run / "world_model" / "debug_videos" / "epoch_0.txt").is_file()
  assert os.listdir(str(cwd)) == []  # no ./~ folder


def teacher_forced_argmax(model, inputs, length):
  """The oracle: the whole model re-run once per position on its own earlier argmaxes."""
  targets = np.zeros([len(inputs), length], dtype=np.int32)
  for i in range(length):
    logits = model({"inputs": inputs, "targets": targets}, training=False)
    targets[:, i] = np.argmax(np.asarray(logits)[:, i], axis=-1)
  return targets


def test_greedy_predictions_match_teacher_forced_argmax():
  """The cached greedy search over a tiny world model equals re-running the whole model once
  per position, batch after batch (the last one short)."""
  import keras
  problem = registry.problem("world_model_bouncing_ball_tiny")
  hparams = loop_hparams.world_model_hparams(registry.hparams("rlmb_tiny"))
  keras.utils.set_random_seed(1)
  model = registry.model("transformer")(hparams, problem.get_hparams())
  tok = problem.tokenizer
  inputs = np.random.default_rng(0).integers(2, tok.vocab_size, size=(5, tok.inputs_length))
  inputs[:, -1] = 1  # EOS, as in the data
  model({"inputs": inputs, "targets": np.zeros((5, tok.targets_length), np.int32)})
  rng = np.random.default_rng(1)  # weights far from the initial ones, so predictions vary
  for variable in model.trainable_variables:
    variable.assign(rng.normal(0.0, 0.5, variable.shape).astype(np.float32))
  predictions = tmb.predict_greedily(model, inputs, tok.targets_length, batch_size=2)
  assert predictions.shape == (5, tok.targets_length) and predictions.dtype == np.int32
  assert len(np.unique(predictions)) > 1  # not a degenerate model
  np.testing.assert_array_equal(predictions,
                                teacher_forced_argmax(model, inputs, tok.targets_length))
  assert tmb.predict_greedily(model, inputs[:0], tok.targets_length).shape == (
      0, tok.targets_length)


def run_script(args, env, cwd=None):
  return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "trainer_model_based.py")]
                        + args, capture_output=True, text=True, env=env, timeout=120, cwd=cwd)


def test_script_user_errors_are_one_line_and_exit_2(script_env, tmp_path):
  """Checked before TensorFlow is imported, so these cost a second each."""
  for args, message in [
      (["--output_dir=%s" % tmp_path, "--loop_hparams_set=rlmb_tiny", "--epochs=0"],
       "epochs=0: the loop needs at least one epoch"),
      (["--output_dir=%s" % tmp_path, "--loop_hparams_set=rlmb_tinyy"],
       "--loop_hparams_set=rlmb_tinyy: unknown hparams set; did you mean 'rlmb_tiny'?"),
      (["--loop_hparams_set=rlmb_tiny"], "--output_dir is required")]:
    result = run_script(args, script_env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["t2t-trainer-model-based: error: " + lines[0].split(": error: ", 1)[1]]
    assert message in lines[0], lines[0]
  assert not os.listdir(str(tmp_path))


@pytest.mark.slow
def test_script_runs_the_loop(script_env, tmp_path):
  """With --output_dir=~/rlmb (in $HOME, not ./~) and --problem over the set's problem."""
  home, cwd = tmp_path / "home", tmp_path / "cwd"
  home.mkdir()
  cwd.mkdir()
  args = ["--output_dir=~/rlmb", "--loop_hparams_set=rlmb_tiny", "--epochs=1",
          "--num_real_env_frames=40", "--random_seed=2", "--problem=world_model_bouncing_ball",
          "--hparams=world_model_train_steps=2,world_model_eval_steps=1,"
          "eval_num_subsequences=4,world_model_schedule=train"]
  result = run_script(args, dict(script_env, HOME=str(home)), cwd=str(cwd))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "1 epochs done; last: next_frame_error" in result.stdout
  out = str(home / "rlmb")
  record = read_json(os.path.join(out, "eval_metrics", "epoch_0.json"))
  assert record["world_model"]["num_examples"] == 4 and record["world_model_train"] == {}
  assert read_json(os.path.join(out, "loop_hparams.json"))["problem"] == (
      "world_model_bouncing_ball")
  assert read_json(os.path.join(out, "world_model", "hparams.json"))["problem_name"] == (
      "world_model_bouncing_ball")
  assert os.listdir(str(cwd)) == []


def test_create_loop_hparams_applies_flags_in_order():
  from t2t_lite.bin import trainer_model_based as bin_tmb
  hp = bin_tmb.create_loop_hparams(
      "rlmb_tiny", "epochs=5,world_model_hparams='hidden_size=8,num_heads=1'",
      num_real_env_frames=77)
  assert hp.epochs == 5 and hp.num_real_env_frames == 77
  assert hp.world_model_hparams == "hidden_size=8,num_heads=1"
  assert loop_hparams.world_model_hparams(hp).hidden_size == 8
  assert bin_tmb.create_loop_hparams("rlmb_tiny", "epochs=5", epochs=3).epochs == 3
  assert hp.problem == "world_model_bouncing_ball_tiny"  # the set's, without --problem
  assert bin_tmb.create_loop_hparams(
      "rlmb_tiny", "problem=x", problem="world_model_bouncing_ball").problem == (
          "world_model_bouncing_ball")
  with pytest.raises(HParamsError, match="epochs"):
    bin_tmb.create_loop_hparams("rlmb_tiny", "epochs=many")
  with pytest.raises(ConfigError, match="not a model-based loop hparams set"):
    bin_tmb.create_loop_hparams("transformer_tiny")


def test_world_model_cosine_schedule_spans_the_whole_loop():
  # Each epoch trains on to a further train_steps: a cosine sized by one run would restart.
  hp = registry.hparams("rlmb_base")
  wm = loop_hparams.world_model_hparams(hp)
  # transformer_tiny's wsd would decay at the end of every epoch: a cosine over the loop runs.
  assert registry.hparams("transformer_tiny").learning_rate_schedule == "wsd"
  assert wm.learning_rate_schedule == "cosine"
  total = hp.epochs * hp.world_model_train_steps
  assert wm.learning_rate_decay_steps == total - wm.learning_rate_warmup_steps
  hp.world_model_hparams = "learning_rate_decay_steps=50"  # an explicit length is kept
  assert loop_hparams.world_model_hparams(hp).learning_rate_decay_steps == 50
  hp.world_model_hparams = "learning_rate_schedule=wsd"  # a schedule asked for is kept
  assert loop_hparams.world_model_hparams(hp).learning_rate_schedule == "wsd"
  hp.world_model_hparams = "learning_rate_schedule=noam"
  assert loop_hparams.world_model_hparams(hp).learning_rate_decay_steps == 0
  assert registry.hparams("rlmb_small").world_model_hparams.startswith(
      "learning_rate_schedule=noam")
