"""The supervised training loop, on an in-memory problem and model (tests/helpers/fakes.py)."""
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.decoding import export_logits_model
from t2t_lite.errors import ConfigError
from t2t_lite.training import SCHEDULES, Trainer, TrainingDivergedError, train_supervised
from t2t_lite.models import metrics as metrics_lib
from t2t_lite.training import distribute
from t2t_lite.training import optimizers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import fakes  # noqa: E402

fakes.register()
HERE = os.path.dirname(os.path.abspath(__file__))


def make_trainer(out, steps, seed=3, **hp):
  return Trainer(fakes.FakeReverseProblem(), "fake_seq_model", fakes.hparams(**hp),
                 None, str(out), steps, random_seed=seed, log_step_count_steps=5,
                 save_checkpoints_steps=10)


def weights(trainer):
  return [v.numpy() for v in trainer.model.weights]


def test_training_lowers_loss_and_saves_checkpoints(tmp_path):
  trainer = make_trainer(tmp_path, 30)
  before = trainer.evaluate(-1)
  after = trainer.run("continuous_train_and_eval", eval_steps=-1)
  assert after["global_step"] == 30
  assert after["loss"] < before["loss"] * 0.8
  assert after["accuracy"] > before["accuracy"]
  assert [os.path.basename(p) for p in sorted(glob.glob(str(tmp_path / "ckpt-*.index")))] == [
      "ckpt-10.index", "ckpt-20.index", "ckpt-30.index"]
  saved = json.loads((tmp_path / "eval_results.json").read_text())
  assert saved["global_step"] == 30 and saved["accuracy"] == pytest.approx(after["accuracy"])
  assert set(saved) >= {"accuracy", "accuracy_top5", "accuracy_per_sequence",
                        "neg_log_perplexity", "approx_bleu_score", "loss"}


def test_resumed_run_ends_with_the_same_weights(tmp_path):
  tf.config.experimental.enable_op_determinism()
  straight = make_trainer(tmp_path / "a", 20)
  straight.train()
  first = make_trainer(tmp_path / "b", 10)  # stops at 10, saving a checkpoint
  first.train()
  resumed = make_trainer(tmp_path / "b", 20)
  assert resumed.restore() is not None and int(resumed.global_step.numpy()) == 10
  resumed.train()
  assert int(resumed.global_step.numpy()) == 20
  for a, b in zip(weights(straight), weights(resumed)):
    np.testing.assert_array_equal(a, b)


def test_rerun_at_train_steps_only_evaluates(tmp_path):
  make_trainer(tmp_path, 10).train()
  again = make_trainer(tmp_path, 10)
  results = again.run("continuous_train_and_eval", eval_steps=2)
  assert results["global_step"] == 10
  assert len(glob.glob(str(tmp_path / "ckpt-*.index"))) == 1


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  trainer = make_trainer(tmp_path, 10)
  trainer.train()
  good = trainer.latest_checkpoint
  trainer2 = make_trainer(tmp_path, 30, learning_rate_constant=1e30)
  with pytest.raises(TrainingDivergedError, match=r"at step \d+.*ckpt-10"):
    trainer2.train()
  assert trainer2.latest_checkpoint == good
  assert sorted(glob.glob(str(tmp_path / "ckpt-*.index"))) == [good + ".index"]


def test_unknown_schedule_lists_valid_ones(tmp_path):
  with pytest.raises(ConfigError) as e:
    train_supervised(fakes.FakeReverseProblem(), "fake_seq_model", fakes.hparams(),
                     None, str(tmp_path), 1, 1, schedule="train_forever")
  for s in SCHEDULES:
    assert s in str(e.value)
  assert not os.listdir(tmp_path)


def test_negative_train_steps_is_refused(tmp_path):
  with pytest.raises(ConfigError, match="train_steps"):
    make_trainer(tmp_path, -5)


def test_evaluate_schedule_needs_a_checkpoint(tmp_path):
  with pytest.raises(ConfigError, match="no checkpoint"):
    make_trainer(tmp_path, 5).run("evaluate")


def test_train_and_evaluate_evaluates_every_local_eval_frequency(tmp_path):
  trainer = make_trainer(tmp_path, 20)
  seen = []
  original = trainer.evaluate
  trainer.evaluate = lambda steps: seen.append(int(trainer.global_step.numpy())) or original(steps)
  results = trainer.run("train_and_evaluate", eval_steps=1, local_eval_frequency=7)
  assert seen == [7, 14, 20]  # the final step too: the result is the trained model's
  assert results["global_step"] == 20


def test_continuous_train_and_eval_evaluates_the_final_step_once(tmp_path):
  trainer = make_trainer(tmp_path, 20)
  seen = []
  original = trainer.evaluate
  trainer.evaluate = lambda steps: seen.append(int(trainer.global_step.numpy())) or original(steps)
  results = trainer.run("continuous_train_and_eval", eval_steps=1, local_eval_frequency=10)
  assert seen == [10, 20] and results["global_step"] == 20


def test_continuous_eval_evaluates_checkpoints_until_train_steps(tmp_path):
  make_trainer(tmp_path, 10).train()
  watcher = Trainer(fakes.FakeReverseProblem(), "fake_seq_model", fakes.hparams(), None,
                    str(tmp_path), 10, continuous_eval_timeout=5)
  results = watcher.run("continuous_eval", eval_steps=2)
  assert results["global_step"] == 10


def test_summaries_are_written_for_tensorboard(tmp_path):
  make_trainer(tmp_path, 10).run("continuous_train_and_eval", eval_steps=1)
  tags = {"train": set(), "eval": set()}
  for split in tags:
    for path in glob.glob(str(tmp_path / split / "events.out.tfevents.*")):
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          tags[split].add(value.tag)
  assert tags["train"] >= {"loss", "learning_rate", "steps_per_sec", "tokens_per_sec"}
  assert tags["eval"] >= {"accuracy", "accuracy_per_sequence", "neg_log_perplexity", "loss"}


def test_exported_saved_model_loads_in_a_fresh_process(tmp_path):
  trainer = make_trainer(tmp_path, 5)
  trainer.train()
  export_dir = trainer.export_saved_model(export_logits_model)
  features = {"inputs": np.array([[2, 3, 1, 0]], np.int32),
              "targets": np.array([[3, 2, 1, 0]], np.int32)}
  expected = trainer.model(features, training=False).numpy()
  np.save(tmp_path / "inputs.npy", features["inputs"])
  np.save(tmp_path / "targets.npy", features["targets"])
  code = (
      "import sys, numpy as np, tensorflow as tf\n"
      "assert 't2t_lite' not in sys.modules\n"
      "m = tf.saved_model.load(sys.argv[1])\n"
      "out = m.serve({'inputs': tf.constant(np.load(sys.argv[2])),"
      " 'targets': tf.constant(np.load(sys.argv[3]))})\n"
      "np.save(sys.argv[4], out.numpy())\n")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  subprocess.run([sys.executable, "-c", code, export_dir, str(tmp_path / "inputs.npy"),
                  str(tmp_path / "targets.npy"), str(tmp_path / "out.npy")],
                 check=True, env=env, cwd=str(tmp_path))
  np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)


def _values(variables):
  return [v.numpy() for v in variables]


def test_ema_momentum_evaluates_the_moving_average_and_trains_on_the_weights(tmp_path):
  trainer = make_trainer(tmp_path / "ema", 12, ema_momentum=0.8)
  trainer.train()
  variables = trainer.model.trainable_variables
  raw = _values(variables)
  averages = _values(optimizers.moving_averages(trainer.optimizer))
  assert any(not np.allclose(r, a) for r, a in zip(raw, averages))
  results = trainer.evaluate(-1)
  for r, v in zip(raw, variables):  # the weights are back after the evaluation
    np.testing.assert_array_equal(r, v.numpy())
  # The same evaluation by a trainer without a moving average, holding the average.
  plain = make_trainer(tmp_path / "plain", 12)
  for v, a in zip(plain.model.trainable_variables, averages):
    v.assign(a)
  assert plain.evaluate(-1)["loss"] == pytest.approx(results["loss"], rel=1e-5)
  for v, r in zip(plain.model.trainable_variables, raw):
    v.assign(r)
  assert plain.evaluate(-1)["loss"] != pytest.approx(results["loss"], rel=1e-3)


def test_ema_average_is_checkpointed_and_is_what_inference_and_export_use(tmp_path):
  trainer = make_trainer(tmp_path, 10, ema_momentum=0.8)
  trainer.run("train")
  averages = _values(optimizers.moving_averages(trainer.optimizer))
  resumed = make_trainer(tmp_path, 10, ema_momentum=0.8)
  assert resumed.restore() is not None
  for a, b in zip(averages, _values(optimizers.moving_averages(resumed.optimizer))):
    np.testing.assert_array_equal(a, b)
  model, path = trainer.task.restore_for_inference(str(tmp_path))
  assert path.endswith("ckpt-10")
  for a, v in zip(averages, model.trainable_variables):
    np.testing.assert_array_equal(a, v.numpy())
  features = {"inputs": tf.constant([[2, 3, 1, 0]]), "targets": tf.constant([[3, 2, 1, 0]])}
  exported = tf.saved_model.load(trainer.export_saved_model(export_logits_model))
  np.testing.assert_allclose(exported.serve(features).numpy(), model(features, training=False).numpy(),
                             rtol=1e-5, atol=1e-6)
  # A checkpoint without the optimizer (here an average of checkpoints) holds the weights
  # to use: its model's weights are restored as they are.
  from t2t_lite.training import averaging  # pylint: disable=g-import-not-at-top
  averaged_dir = os.path.dirname(averaging.average_checkpoints(str(tmp_path), 1))
  model, _ = trainer.task.restore_for_inference(averaged_dir)
  for r, v in zip(_values(trainer.model.trainable_variables), model.trainable_variables):
    np.testing.assert_array_equal(r, v.numpy())


def test_auto_mixed_precision_trains_in_bfloat16_and_decodes_in_float32_on_a_cpu(
    tmp_path, monkeypatch):
  from t2t_lite.utils import hardware  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(hardware, "native_bfloat16", lambda: True)
  monkeypatch.setattr(hardware, "accelerator", lambda: False)
  # What graph_options reads (the tests themselves run TensorFlow without oneDNN).
  monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
  trainer = make_trainer(tmp_path, 4, mixed_precision="auto")
  assert (trainer.model.mix.compute_dtype, trainer.model.mix.variable_dtype) == (
      "bfloat16", "float32")
  # Its train and eval functions run without grappler's MatMul+BiasAdd fusion (see
  # hardware.graph_options); the process's options are left as they were.
  seen = []
  original = trainer.make_train_fn

  def make_train_fn():
    fn = original()

    def train_fn(*args):
      seen.append(tf.config.optimizer.get_experimental_options().get("remapping"))
      return fn(*args)
    return train_fn

  trainer.make_train_fn = make_train_fn
  before = tf.config.optimizer.get_experimental_options().get("remapping")
  trainer.run("train")
  assert seen and set(seen) == {False}
  assert tf.config.optimizer.get_experimental_options().get("remapping") == (
      True if before is None else before)
  model, _ = trainer.task.restore_for_inference(str(tmp_path))
  assert model.mix.compute_dtype == "float32"
  for a, b in zip(weights(trainer), [v.numpy() for v in model.weights]):
    np.testing.assert_array_equal(a, b)
  assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was


def test_ema_best_checkpoint_holds_the_evaluated_average(tmp_path):
  trainer = Trainer(fakes.FakeReverseProblem(), "fake_seq_model",
                    fakes.hparams(ema_momentum=0.8), None, str(tmp_path), 10,
                    random_seed=3, keep_best_by="loss")
  results = trainer.run("train_and_evaluate", eval_steps=-1, local_eval_frequency=10)
  averages = _values(optimizers.moving_averages(trainer.optimizer))
  model, path = trainer.task.restore_for_inference(str(tmp_path / "best"))
  assert path.endswith("ckpt-%d" % results["global_step"])
  for a, v in zip(averages, model.trainable_variables):
    np.testing.assert_array_equal(a, v.numpy())


def test_ema_momentum_outside_0_1_is_refused():
  for bad in (1.0, -0.1):
    with pytest.raises(ValueError, match="ema_momentum=%s: must be in" % bad):
      optimizers.create_optimizer(fakes.hparams(ema_momentum=bad), 10)
  assert optimizers.create_optimizer(fakes.hparams(), 10).use_ema is False


def test_noam_schedule_matches_tensor2tensor_formula():
  hp = fakes.hparams(learning_rate_schedule="noam", learning_rate_constant=2.0,
                         learning_rate_warmup_steps=100, hidden_size=64)
  schedule = optimizers.learning_rate_schedule(hp, 1000)
  for step in (0, 49, 99, 100, 400, 999):
    s = step + 1.0
    want = 2.0 * min(1.0, s / 100) * (max(s, 100.0) ** -0.5) * (64 ** -0.5)
    assert float(schedule(step)) == pytest.approx(want, rel=1e-5)


def test_cosine_and_constant_schedules():
  hp = fakes.hparams(learning_rate_schedule="cosine", learning_rate_constant=0.5,
                         learning_rate_warmup_steps=10)
  cosine = optimizers.learning_rate_schedule(hp, 110)
  assert float(cosine(5)) == pytest.approx(0.25, rel=1e-4)  # halfway up the warmup
  assert float(cosine(10)) == pytest.approx(0.5, rel=1e-4)
  assert float(cosine(60)) == pytest.approx(0.25, rel=1e-3)  # halfway down the cosine
  assert float(cosine(110)) == pytest.approx(0.0, abs=1e-6)
  hp = fakes.hparams(learning_rate_schedule="constant", learning_rate_constant=0.3,
                         learning_rate_warmup_steps=0)
  constant = optimizers.learning_rate_schedule(hp, 100)
  assert float(constant(0)) == pytest.approx(0.3) and float(constant(10 ** 6)) == pytest.approx(0.3)


def test_wsd_schedule_warms_up_holds_then_decays():
  hp = fakes.hparams(learning_rate_schedule="wsd", learning_rate_constant=0.5,
                     learning_rate_warmup_steps=10)
  wsd = optimizers.learning_rate_schedule(hp, 100)  # the decay: the last fifth, 80 -> 100
  assert float(wsd(0)) == pytest.approx(0.05)  # (step + 1) / warmup of the peak
  assert float(wsd(4)) == pytest.approx(0.25)
  for step in (9, 10, 50, 80):
    assert float(wsd(step)) == pytest.approx(0.5)
  assert float(wsd(90)) == pytest.approx(0.25)  # halfway down the linear decay
  assert float(wsd(100)) == pytest.approx(0.0, abs=1e-7)
  assert float(wsd(10 ** 6)) == pytest.approx(0.0, abs=1e-7)
  hp = fakes.hparams(learning_rate_schedule="wsd", learning_rate_constant=0.5,
                     learning_rate_warmup_steps=0, learning_rate_decay_steps=40,
                     learning_rate_min_fraction=0.1)
  wsd = optimizers.learning_rate_schedule(hp, 100)
  assert float(wsd(0)) == pytest.approx(0.5) and float(wsd(60)) == pytest.approx(0.5)
  assert float(wsd(80)) == pytest.approx(0.5 * (1 - 0.9 * 0.5))
  assert float(wsd(100)) == pytest.approx(0.05)
  config = wsd.get_config()
  assert optimizers.WarmupStableDecay(**config).get_config() == config


@pytest.mark.parametrize("name, cls", [("adam", "FusedAdam"), ("adafactor", "Adafactor"),
                                       ("sgd", "SGD")])
def test_optimizers_from_hparams(name, cls):
  opt = optimizers.create_optimizer(fakes.hparams(optimizer=name, clip_grad_norm=1.5), 10)
  assert type(opt).__name__ == cls
  assert opt.global_clipnorm == 1.5


def _adam_run(cls, steps=6, sparse=False, **kwargs):
  """Weights and moving averages after `steps` updates of `cls` on fixed gradients."""
  keras.utils.set_random_seed(3)
  weights = [tf.Variable(tf.random.normal([5, 3])), tf.Variable(tf.random.normal([3]))]
  grads = [[tf.random.normal(w.shape) for w in weights] for _ in range(steps)]
  opt = cls(learning_rate=0.01, beta_2=0.98, epsilon=1e-9, use_ema=True, ema_momentum=0.9,
            **kwargs)

  @tf.function
  def step(g):
    if sparse:  # the first weight's gradient as IndexedSlices (rows 0 and 3), like a gather's
      g = [tf.IndexedSlices(tf.gather(g[0], [0, 3]), tf.constant([0, 3]),
                            tf.constant([5, 3]))] + g[1:]
    opt.apply_gradients(zip(g, weights))

  for g in grads:
    step(g)
  return ([w.numpy() for w in weights],
          [a.numpy() for a in optimizers.moving_averages(opt)], step)


@pytest.mark.parametrize("sparse", [False, True])
def test_fused_adam_updates_as_keras_adam_does(sparse):
  weights, averages, step = _adam_run(optimizers.FusedAdam, sparse=sparse)
  keras_weights, keras_averages, _ = _adam_run(keras.optimizers.Adam, sparse=sparse)
  for got, want in zip(weights + averages, keras_weights + keras_averages):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # The weights moved, and their average is not the weights themselves.
  assert not np.allclose(weights[0], averages[0])
  graph = step.get_concrete_function([tf.TensorSpec([5, 3]), tf.TensorSpec([3])]).graph
  ops = {n.op for n in graph.as_graph_def().node}
  assert {"ResourceApplyAdam", "ResourceApplyGradientDescent"} <= ops


def test_fused_adam_runs_keras_update_under_a_strategy_and_for_amsgrad():
  weights, averages, _ = _adam_run(optimizers.FusedAdam, amsgrad=True)
  keras_weights, keras_averages, _ = _adam_run(keras.optimizers.Adam, amsgrad=True)
  for got, want in zip(weights + averages, keras_weights + keras_averages):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
  with strategy.scope():
    weight = tf.Variable([1.0, 2.0])
    opt = optimizers.FusedAdam(learning_rate=0.1, use_ema=True, ema_momentum=0.5)

  @tf.function
  def step():
    strategy.run(lambda: opt.apply_gradients([(tf.constant([1.0, -1.0]), weight)]))

  step()
  step()
  # Adam's first steps move each weight by about the rate, against its gradient's sign.
  np.testing.assert_allclose(weight.numpy(), [0.8, 2.2], atol=1e-3)
  assert float(optimizers.moving_averages(opt)[0][0]) == pytest.approx(0.85, abs=1e-3)


def test_bad_optimizer_and_schedule_names():
  with pytest.raises(ValueError, match="optimizer=rmsprop"):
    optimizers.create_optimizer(fakes.hparams(optimizer="rmsprop"), 10)
  with pytest.raises(ValueError, match="learning_rate_schedule=linear"):
    optimizers.create_optimizer(fakes.hparams(learning_rate_schedule="linear"), 10)


def test_sequence_metrics_on_known_predictions():
  # Two sequences; the second has one wrong token. Padding (0) is ignored.
  targets = tf.constant([[2, 3, 1, 0], [3, 3, 2, 1]])
  predictions = np.array([[2, 3, 1, 4], [3, 2, 2, 1]])
  logits = tf.one_hot(predictions, 6) * 10.0
  sums = metrics_lib.batch_metric_sums(logits, targets, metrics_lib.SEQUENCE_METRICS)
  value = {k: float(n) / float(d) for k, (n, d) in sums.items()}
  assert value["accuracy"] == pytest.approx(6 / 7)
  assert value["accuracy_per_sequence"] == pytest.approx(0.5)
  assert value["accuracy_top5"] == pytest.approx(1.0)
  assert value["neg_log_perplexity"] < 0


def test_bleu_of_identical_and_disjoint_sequences():
  same = metrics_lib.BleuAccumulator()
  same.add_batch([[2, 3, 4, 5, 6, 1]], [[2, 3, 4, 5, 6, 1]])
  assert same.result() == pytest.approx(1.0)
  short = metrics_lib.BleuAccumulator()  # too short for 4-grams: still a perfect match
  short.add_batch([[2, 3, 4, 1]], [[2, 3, 4, 1]])
  assert short.result() == pytest.approx(1.0)
  disjoint = metrics_lib.BleuAccumulator()  # tensor2tensor's smoothing: small, not zero
  disjoint.add_batch([[7, 8, 9, 10, 1]], [[2, 3, 4, 5, 1]])
  assert 0.0 < disjoint.result() < 0.1
  # One 3-gram of 2 missing: the smoothed precision of that order is 1 / (2 * possible).
  partial = metrics_lib.BleuAccumulator()
  partial.add_batch([[2, 3, 9, 5, 6, 1]], [[2, 3, 4, 5, 6, 1]])
  import math  # pylint: disable=g-import-not-at-top
  expected = math.exp((math.log(4 / 5) + math.log(2 / 4) + math.log(1 / 6) +
                       math.log(1 / 8)) / 4)
  assert partial.result() == pytest.approx(expected)


def _run_script(args, timeout=240):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
  return subprocess.run([sys.executable] + args, env=env, capture_output=True, text=True,
                        timeout=timeout)


def test_mirrored_two_cpus_equals_one_device(tmp_path):
  out = _run_script([os.path.join(HERE, "helpers", "mirrored_check.py"), str(tmp_path)])
  assert out.returncode == 0, out.stderr[-3000:]
  assert "MIRRORED_MATCH" in out.stdout


def test_multi_worker_mirrored_two_processes(tmp_path):
  import socket
  ports = []
  for _ in range(2):
    with socket.socket() as s:
      s.bind(("localhost", 0))
      ports.append(s.getsockname()[1])
  procs = []
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
  for index in range(2):
    cfg = {"cluster": {"worker": ["localhost:%d" % p for p in ports]},
           "task": {"type": "worker", "index": index}}
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, "helpers", "multi_worker_check.py"),
         str(tmp_path / ("w%d" % index)), str(tmp_path / ("w%d.npy" % index))],
        env=dict(env, TF_CONFIG=json.dumps(cfg)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True))
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=240))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  for p, (o, e) in zip(procs, outs):
    assert p.returncode == 0, e[-3000:]
  np.testing.assert_allclose(np.load(tmp_path / "w0.npy"), np.load(tmp_path / "w1.npy"),
                             rtol=1e-6, atol=1e-7)


def test_flag_name_lists_are_the_library_s():
  # The flags, the trainer and the strategy factory read one definition (t2t_lite.constants).
  from t2t_lite import constants
  from t2t_lite import flags as t2t_flags
  from t2t_lite.training import distribute
  assert t2t_flags.SCHEDULES is SCHEDULES is constants.SCHEDULES
  assert t2t_flags.DISTRIBUTION_STRATEGIES is distribute.STRATEGIES


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ("not json", True),  # create_strategy reports it
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief"}}, True),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
     False),
])
def test_is_chief_reads_tf_config(monkeypatch, tf_config, chief):
  if tf_config is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
  else:
    monkeypatch.setenv("TF_CONFIG", tf_config if isinstance(tf_config, str) else
                       json.dumps(tf_config))
  assert distribute.is_chief() is chief
