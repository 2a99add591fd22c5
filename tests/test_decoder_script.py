"""t2t-decoder on a tiny trained run: decode files, stdin and the dev split, export a string
SavedModel and serve it from a process that never imports t2t_lite, and fail cleanly."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

import problems  # noqa: F401  (registers tiny_algo)
import t2t_lite.models  # noqa: F401
from t2t_lite import decoding
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.bin import t2t_decoder
from t2t_lite.errors import CheckpointNotFoundError, ConfigError, HParamsError
from t2t_lite.task import Task
from helpers import tiny_run

PROBLEM = "tiny_algo"
LINES = ["1 0 1 1", "0", "1 1 1 0 0 1 0 1", "1 1"]
DECODE_HPARAMS = "beam_size=2,alpha=0.6,extra_length=5,return_beams=true,write_beam_scores=true"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A transformer (16 wide) trained a few steps on tiny_algo by the Trainer, with the
  hparams.json t2t-trainer writes."""
  root = tmp_path_factory.mktemp("decoder_run")
  data_dir, output_dir = str(root / "data"), str(root / "train")
  problem = registry.problem(PROBLEM)
  problem.generate_data(data_dir, str(root / "tmp"))
  _, trainer = tiny_run.train_tiny_transformer(PROBLEM, data_dir, output_dir, 3,
                                               save_checkpoints_steps=3,
                                               hparams="batch_size=256", flags_text="")
  with trainer.ema_weights():  # transformer_tiny's moving average: what t2t-decoder reads
    weights = [w.numpy() for w in trainer.model.weights]
  inputs = root / "inputs.txt"
  inputs.write_text("\n".join(LINES) + "\n")
  return {"root": root, "data_dir": data_dir, "output_dir": output_dir,
          "weights": weights, "inputs": str(inputs)}


@pytest.fixture(scope="module")
def restored(run):
  """The run's model restored in this process, with a beam and a greedy Decoder."""
  hparams = output_dir_lib.load_hparams(run["output_dir"], "transformer_tiny")
  task = Task(PROBLEM, "transformer", hparams, run["data_dir"])
  model, _ = decoding.restore_model(task, run["output_dir"])
  return {"model": model, "hparams": hparams, "task": task,
          "beam": decoding.Decoder(model, decoding.decode_hparams(DECODE_HPARAMS)),
          "greedy": decoding.Decoder(model, decoding.decode_hparams("beam_size=1"))}


def run_main(**flag_values):
  """t2t-decoder's main in this process, with these flags set."""
  was_parsed = flags.FLAGS.is_parsed()
  if not was_parsed:
    flags.FLAGS.mark_as_parsed()
  try:
    with flagsaver.flagsaver(problem=PROBLEM, model="transformer",
                             hparams_set="transformer_tiny", **flag_values):
      return t2t_decoder.main(["t2t-decoder"])
  finally:
    if not was_parsed:
      flags.FLAGS.unparse_flags()


def test_restored_model_has_the_trained_weights(run, restored):
  weights = [w.numpy() for w in restored["model"].weights]
  assert len(weights) == len(run["weights"])
  for got, want in zip(weights, run["weights"]):
    np.testing.assert_array_equal(got, want)


def test_decode_file_and_serve_the_export_without_t2t_lite(run, restored, script_env,
                                                          repo_root):
  outputs = run["root"] / "outputs.txt"
  export_dir = run["root"] / "export"
  proc = subprocess.run(
      [sys.executable, os.path.join(repo_root, "scripts", "t2t_decoder.py"),
       "--problem=" + PROBLEM, "--model=transformer", "--hparams_set=transformer_tiny",
       "--output_dir=" + run["output_dir"], "--data_dir=" + run["data_dir"],
       "--decode_from_file=" + run["inputs"], "--decode_to_file=" + str(outputs),
       "--decode_hparams=" + DECODE_HPARAMS, "--export_saved_model",
       "--export_dir=" + str(export_dir), "--hparams=label_smoothing=0.0"],
      env=script_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert "Decoded 4 lines" in proc.stdout

  target = registry.problem(PROBLEM).feature_encoders(run["data_dir"])["targets"]
  results = restored["beam"].decode_with_scores(decoding.encode_lines(restored["task"], LINES))
  expected = [([target.decode(ids) for ids in beams], scores) for beams, scores in results]
  written = outputs.read_text().splitlines()
  assert len(written) == len(LINES)
  for line, (texts, scores) in zip(written, expected):
    fields = line.split("\t")
    assert fields[0::2] == texts  # the two beams, best first, in the input order
    np.testing.assert_allclose([float(s) for s in fields[1::2]], scores, atol=1e-4)
    assert float(fields[1]) >= float(fields[3])

  serve = (
      "import json, sys, tensorflow as tf\n"
      "m = tf.saved_model.load(sys.argv[1])\n"
      "out = m.signatures['serving_default'](inputs=tf.constant(json.loads(sys.argv[2])))\n"
      "assert 't2t_lite' not in sys.modules\n"
      "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}, default=lambda b: "
      "b.decode()))\n")
  env = {k: v for k, v in script_env.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, "-c", serve, str(export_dir), json.dumps(LINES)],
                        env=env, capture_output=True, text=True, timeout=300,
                        cwd=str(run["root"]))
  assert proc.returncode == 0, proc.stderr
  served = json.loads(proc.stdout.strip().splitlines()[-1])
  assert served["outputs"] == [texts[0] for texts, _ in expected]
  assert served["beams"] == [texts for texts, _ in expected]
  np.testing.assert_allclose(served["beam_scores"], [s for _, s in expected], atol=1e-4)
  np.testing.assert_allclose(served["scores"], [s[0] for _, s in expected], atol=1e-4)


def test_no_checkpoint_is_one_line_and_exit_2(run, script_env, repo_root, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(repo_root, "scripts", "t2t_decoder.py"),
       "--problem=" + PROBLEM, "--model=transformer", "--hparams_set=transformer_tiny",
       "--output_dir=" + str(tmp_path), "--decode_from_file=" + run["inputs"]],
      env=script_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("t2t-decoder: error: no checkpoint in")


def test_user_errors(run, tmp_path):
  empty = tmp_path / "empty.txt"
  empty.write_text("\n\n")
  common = dict(output_dir=run["output_dir"], data_dir=run["data_dir"])
  with pytest.raises(ConfigError, match="no such file"):
    run_main(decode_from_file=str(tmp_path / "missing.txt"), **common)
  with pytest.raises(ConfigError, match="is empty"):
    run_main(decode_from_file=str(empty), **common)
  with pytest.raises(HParamsError, match="decode_hparams.*beam_width"):
    run_main(decode_from_file=run["inputs"], decode_hparams="beam_width=4", **common)
  with pytest.raises(CheckpointNotFoundError, match="no checkpoint"):
    run_main(decode_from_file=run["inputs"], output_dir=str(tmp_path),
             data_dir=run["data_dir"])
  bad = tmp_path / "bad.txt"
  bad.write_text("1 0 7\n")
  with pytest.raises(ConfigError, match="line 1 .*not a symbol"):
    run_main(decode_from_file=str(bad), **common)


def test_dev_split_metrics_interactive_and_exact_match_rate(run, restored, capsys,
                                                           monkeypatch):
  where = dict(output_dir=run["output_dir"], data_dir=run["data_dir"])
  assert run_main(decode_hparams="beam_size=1,num_samples=20", **where) == 0
  printed = capsys.readouterr().out
  metrics = decoding.decode_dataset(restored["greedy"], restored["task"], num_samples=20,
                                    log=False)
  assert metrics["num_examples"] == 20 and 0.0 <= metrics["accuracy"] <= 1.0
  assert "Decoded 20 dev examples of tiny_algo" in printed
  assert "accuracy (per sequence)    %.4f" % metrics["accuracy_per_sequence"] in printed
  assert "accuracy (per token)       %.4f" % metrics["accuracy"] in printed
  assert printed.count("  target: ") == 5  # a few examples logged
  rate = decoding.exact_match_rate(run["output_dir"], run["data_dir"], PROBLEM, "transformer",
                                   "transformer_tiny", num_examples=20)
  assert rate == metrics["accuracy_per_sequence"]

  monkeypatch.setattr(sys, "stdin", io.StringIO("1 0 1\n0 0 1 1\n"))
  assert run_main(decode_interactive=True, decode_hparams="beam_size=1", **where) == 0
  expected = decoding.decode_lines(restored["greedy"], restored["task"], ["1 0 1", "0 0 1 1"])
  assert capsys.readouterr().out.splitlines() == expected
