"""A vocabulary that does not match the checkpoint: a clear error, never nonsense decodes."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import problems  # noqa: F401  (registers text2text_tmpdir_subwords)
import t2t_lite.models  # noqa: F401
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.errors import ConfigError
from t2t_lite.task import Task
from t2t_lite.training import Trainer, averaging
from helpers import tiny_run

PROBLEM = "text2text_tmpdir_subwords"  # a text vocabulary file the tests rewrite
PAIRS_A = [("the cat sat", "die katze sass"), ("a dog", "ein hund"),
           ("the house", "das haus"), ("good morning", "guten morgen")] * 4
PAIRS_B = [("one two three", "eins zwei drei"), ("red blue", "rot blau"),
           ("four five", "vier fuenf"), ("green tree", "gruener baum")] * 4


def make_data(root, name, pairs):
  raw, data = os.path.join(root, name + "_raw"), os.path.join(root, name + "_data")
  os.makedirs(raw)
  for split in ("train", "eval"):
    for side, index in (("inputs", 0), ("targets", 1)):
      with open(os.path.join(raw, "%s.%s.txt" % (side, split)), "w", encoding="utf-8") as f:
        f.writelines(p[index] + "\n" for p in pairs)
  registry.problem(PROBLEM).generate_data(data, raw)
  return data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("vocab_check"))
  data_a, data_b = make_data(root, "a", PAIRS_A), make_data(root, "b", PAIRS_B)
  output_dir = os.path.join(root, "train")
  hparams, _ = tiny_run.train_tiny_transformer(PROBLEM, data_a, output_dir, 2,
                                               save_checkpoints_steps=1, hparams="batch_size=64")
  return {"root": root, "a": data_a, "b": data_b, "hparams": hparams, "output_dir": output_dir}


def vocab_file(data_dir):
  return os.path.join(data_dir, registry.problem(PROBLEM).vocab_filename)


def test_the_run_records_its_vocabulary(run):
  with open(os.path.join(run["output_dir"], "vocab.json")) as f:
    saved = json.load(f)
  task = Task(PROBLEM, "transformer", run["hparams"], run["a"])
  assert saved == task.vocab_fingerprint()
  assert list(saved["files"]) == [os.path.basename(vocab_file(run["a"]))]
  assert saved["vocab_size"]["targets"] == task.problem_hparams.vocab_size["targets"]
  model, path = task.restore_for_inference(run["output_dir"])  # the same vocabulary: fine
  assert path.endswith("ckpt-2") and model is not None


def test_another_vocabulary_is_refused_by_decoding_and_training(run, tmp_path):
  other = Task(PROBLEM, "transformer", run["hparams"], run["b"])
  with pytest.raises(ConfigError, match=r"the vocabulary in data_dir .*b_data does not match "
                                        r"the one the checkpoints in .*train were trained with"):
    other.restore_for_inference(run["output_dir"])
  copy = str(tmp_path / "train")
  shutil.copytree(run["output_dir"], copy)
  before = sorted(os.listdir(copy))
  with pytest.raises(ConfigError, match="does not match"):
    Trainer(PROBLEM, "transformer", run["hparams"], run["b"], copy, train_steps=4).run("train")
  with pytest.raises(ConfigError, match="does not match"):
    Trainer(PROBLEM, "transformer", run["hparams"], run["b"], copy, train_steps=4).run(
        "evaluate")
  assert sorted(os.listdir(copy)) == before  # nothing written, no checkpoint lost


def test_same_size_other_content_names_the_file(run, tmp_path):
  """A rebuilt vocabulary with as many ids (sentencepiece gives exactly the size asked) is
  caught by its content."""
  data = str(tmp_path / "data")
  shutil.copytree(run["a"], data)
  path = vocab_file(data)
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  swap = len(lines) - 2
  lines[swap], lines[swap + 1] = lines[swap + 1], lines[swap]  # two subtokens trade ids
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  task = Task(PROBLEM, "transformer", run["hparams"], data)
  assert task.problem_hparams.vocab_size == Task(
      PROBLEM, "transformer", run["hparams"], run["a"]).problem_hparams.vocab_size
  with pytest.raises(ConfigError, match=r"%s differs \(sha256 [0-9a-f]{12}, the run's "
                                        r"[0-9a-f]{12}\)" % os.path.basename(path)):
    task.restore_for_inference(run["output_dir"])


def test_best_and_averaged_dirs_carry_the_fingerprint(run, tmp_path):
  copy = str(tmp_path / "train")
  shutil.copytree(run["output_dir"], copy)
  avg = averaging.average_checkpoints(copy, 2)
  other = Task(PROBLEM, "transformer", run["hparams"], run["b"])
  with pytest.raises(ConfigError, match="does not match"):
    other.restore_for_inference(os.path.dirname(avg))


def test_decoder_script_exits_2_with_one_line(run, tmp_path, script_env, repo_root):
  source = tmp_path / "in.txt"
  source.write_text("the cat\n")
  proc = subprocess.run(
      [sys.executable, os.path.join(repo_root, "scripts", "t2t_decoder.py"),
       "--problem=" + PROBLEM, "--model=transformer", "--data_dir=" + run["b"],
       "--output_dir=" + run["output_dir"], "--decode_from_file=" + str(source),
       "--decode_to_file=" + str(tmp_path / "out.txt")],
      env=script_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "does not match the one the checkpoints" in lines[0], proc.stderr
  assert not (tmp_path / "out.txt").exists()
