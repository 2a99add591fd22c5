"""Evaluation extras of the trainer: decoded sacreBLEU, the best checkpoint, averaging at the
end, on a tiny transformer trained a few steps on tiny_algo."""
import json
import os

import numpy as np
import pytest

import problems  # noqa: F401  (registers tiny_algo)
import t2t_lite.models  # noqa: F401
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.decoding import DevBleu
from t2t_lite.decoding import decoder as decoder_lib
from t2t_lite.decoding import runner
from t2t_lite.errors import ConfigError
from t2t_lite.flags import create_hparams
from t2t_lite.training import Trainer
from helpers import tiny_run

PROBLEM = "tiny_algo"
# Without transformer_tiny's moving average of the weights, so that the checkpoints hold the
# weights evaluated (tests/test_training.py covers ema_momentum).
TINY = tiny_run.TINY_SIZES + ",batch_size=128,ema_momentum=0.0"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("data"))
  registry.problem(PROBLEM).generate_data(path, path)
  return path


def make(data_dir, out, hparams="", **kwargs):
  hp = create_hparams("transformer_tiny", ",".join(filter(None, [TINY, hparams])),
                      problem_name=PROBLEM)
  output_dir_lib.save_or_check_hparams(out, hp)
  return Trainer(PROBLEM, "transformer", hp, data_dir, out, train_steps=6,
                 save_checkpoints_steps=2, random_seed=1, **kwargs)


def test_bleu_best_checkpoint_and_average(data_dir, tmp_path):
  out = str(tmp_path / "run")
  trainer = make(data_dir, out, eval_bleu_samples=16,
                 dev_bleu=DevBleu(decoder_lib.decode_hparams("beam_size=1")),
                 keep_best_by="accuracy", average_last_checkpoints=3)
  seen = []
  original = trainer.evaluate

  def evaluate(steps):
    results = original(steps)
    seen.append(dict(results))
    return results

  trainer.evaluate = evaluate
  results = trainer.run("train_and_evaluate", eval_steps=2, local_eval_frequency=2)
  assert [r["global_step"] for r in seen] == [2, 4, 6]

  # bleu: sacreBLEU of 16 greedy decodes, the same as decoding them here.
  assert 0.0 <= results["bleu"] <= 100.0
  decoder = decoder_lib.Decoder(trainer.model, decoder_lib.decode_hparams("beam_size=1"))
  assert results["bleu"] == pytest.approx(runner.dev_bleu(decoder, trainer.task, 16))
  saved = output_dir_lib.read_eval_results(out)
  assert saved["bleu"] == pytest.approx(results["bleu"])

  # best: the evaluation with the highest accuracy (the first of equals), a run dir of its own.
  best = max(seen, key=lambda r: (r["accuracy"], -r["global_step"]))
  best_dir = os.path.join(out, "best")
  kept = output_dir_lib.read_eval_results(best_dir)
  assert kept["global_step"] == best["global_step"]
  assert kept["accuracy"] == pytest.approx(best["accuracy"])
  assert output_dir_lib.checkpoint_paths(best_dir) == [
      os.path.join(best_dir, "ckpt-%d" % best["global_step"])]
  with open(os.path.join(best_dir, "hparams.json")) as f:
    assert json.load(f)["hidden_size"] == 16
  model, _ = trainer.task.restore_for_inference(best_dir)
  if best["global_step"] == 6:
    for a, b in zip(model.weights, trainer.model.weights):
      np.testing.assert_array_equal(a.numpy(), b.numpy())

  # avg: the mean of ckpt-2, 4 and 6 (each restored into a model here).
  avg_dir = os.path.join(out, "avg")
  assert output_dir_lib.latest_checkpoint(avg_dir).endswith("ckpt-6")
  averaged, _ = trainer.task.restore_for_inference(avg_dir)
  inputs = [trainer.task.restore_for_inference(out, os.path.join(out, "ckpt-%d" % s))[0]
            for s in (2, 4, 6)]
  for i, weight in enumerate(averaged.weights):
    mean = np.mean([m.weights[i].numpy().astype(np.float64) for m in inputs], axis=0)
    np.testing.assert_allclose(weight.numpy(), mean, rtol=1e-5, atol=1e-7)


# A flat rate high enough that 3 more steps lower the eval loss on every run.
FAST = "learning_rate_schedule=constant,learning_rate_constant=0.01,learning_rate_warmup_steps=0"


def test_a_better_metric_later_replaces_the_best_and_a_rerun_remembers_it(data_dir, tmp_path):
  out = str(tmp_path / "run")
  best_dir = os.path.join(out, "best")
  trainer = make(data_dir, out, FAST, keep_best_by="loss")
  evaluations = []  # (the evaluation's results, best/'s results right after it)
  original = trainer.evaluate

  def evaluate(steps):
    results = original(steps)
    evaluations.append((dict(results), output_dir_lib.read_eval_results(best_dir)))
    return results

  trainer.evaluate = evaluate
  trainer.run("train_and_evaluate", eval_steps=2, local_eval_frequency=3)
  (first, best_first), (second, best_second) = evaluations
  assert (first["global_step"], second["global_step"]) == (3, 6)
  assert second["loss"] < first["loss"]  # the premise: the later evaluation is better
  assert best_first["global_step"] == 3
  assert best_second["global_step"] == 6  # replaced
  assert best_second["loss"] == pytest.approx(second["loss"])
  assert output_dir_lib.checkpoint_paths(best_dir) == [os.path.join(best_dir, "ckpt-6")]

  # A new evaluator of the same run reads best/'s metric: a worse model does not replace it.
  again = make(data_dir, out, FAST, keep_best_by="loss")
  again.restore(with_data=False)
  rng = np.random.default_rng(0)
  for weight in again.model.trainable_weights:
    weight.assign(weight.numpy() + rng.normal(0.0, 1.0, weight.shape).astype(np.float32))
  again._evaluator = None  # pylint: disable=protected-access
  worse = again.evaluate(2)
  assert worse["loss"] > best_second["loss"]  # the premise: this model is worse
  assert output_dir_lib.read_eval_results(best_dir) == best_second
  assert output_dir_lib.checkpoint_paths(best_dir) == [os.path.join(best_dir, "ckpt-6")]


def test_bad_settings_are_config_errors(data_dir, tmp_path):
  with pytest.raises(ConfigError, match="average_last_checkpoints=5: the run keeps at most 3"):
    make(data_dir, str(tmp_path / "a"), average_last_checkpoints=5)
  with pytest.raises(ValueError, match="16 BLEU samples need dev_bleu"):  # decoding.DevBleu
    make(data_dir, str(tmp_path / "c"), eval_bleu_samples=16)
  trainer = make(data_dir, str(tmp_path / "b"), keep_best_by="blue")
  with pytest.raises(ConfigError, match="keep_best_by=blue: the evaluation has no such metric"):
    trainer.run("train_and_evaluate", eval_steps=1, local_eval_frequency=6)
