"""Translation on real text, offline: t2t_lite against the keras-hub pipeline, same budget.

    pip install -e '.[bench]'                  # keras-hub, for the peer
    python -m benchmarks.translate [--budget_s=900] [--test_lines=1000] [--work_dir=DIR]

The corpus: English->German pairs from the gettext catalogs of this machine
(benchmarks/gettext_corpus.py; split by catalog, so no test sentence is seen in training).
Without catalogs the rows say the benchmark was skipped.

In one run:

1. Packing: real (non-pad) target tokens per second of t2t_lite's training step on this
   corpus, the set's packed rows (`packed_length`, on by default for text problems; without
   and with XLA) against the same token budget batched without packing: bucketed by length
   (t2t_lite's batching when packing is off) and padded to max_length (the fixed shapes XLA
   and TPUs need, and what a Keras user's `padded_batch` does). Same loop, same number of
   batches. Target: >= 2x.
2. t2t_lite as its user runs it: `t2t-datagen` (text2text_tmpdir with an 8k SentencePiece
   vocabulary, registered in benchmarks/translate_usr.py through --t2t_usr_dir), then
   `t2t-trainer --hparams_set=transformer_translate_cpu --schedule=train`, stopped with SIGTERM
   after `--budget_s` seconds from its launch (it saves a checkpoint and exits), then beam-4
   decoding of the first `--test_lines` test sentences and sacreBLEU against their references.
   The last 3 checkpoints (saved every 200 steps) averaged (`t2t-avg-all`) are decoded and scored too.
3. The keras-hub pipeline (benchmarks/translate_peer.py) with the same budget of `model.fit`,
   the same model size, vocabulary size and optimizer schedule, in its own process.

Targets: t2t_lite's BLEU >= 1.2x the peer's; its beam-4 decoding >= 2x faster (sentences/s over
the same test sentences, the first batch's compilation excluded on both sides). The budget
counts t2t-trainer's whole process (imports and graph building included) but only the peer's
`fit`, so any advantage given is the peer's. The vocabulary build times are in the `vocab`
section (benchmarks/vocab.py), run by the same `run_all`.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # `python benchmarks/translate.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USR_DIR = os.path.join(REPO, "benchmarks", "translate_usr.py")
PROBLEM = "text2text_tmpdir_sp8k"
HPARAMS_SET = "transformer_translate_cpu"
BUDGET_S = 900.0
TEST_LINES = 1000
BLEU_TARGET = 1.2
DECODE_TARGET = 2.0
PACKING_TARGET = 2.0
PACKING_BATCHES = 12
AVERAGE_LAST = 3


def _script(name):
  return [sys.executable, os.path.join(REPO, "scripts", name)]


def _env():
  env = dict(os.environ)
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _check(cmd, log):
  with open(log, "a", encoding="utf-8") as f:
    f.write("$ %s\n" % " ".join(cmd))
    f.flush()
    proc = subprocess.run(cmd, env=_env(), stdout=f, stderr=subprocess.STDOUT, check=False)
  if proc.returncode != 0:
    raise RuntimeError("%s failed (exit %d); see %s" % (" ".join(cmd[1:3]), proc.returncode,
                                                       log))


def _hparams(overrides=""):
  import t2t_lite.models  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  return t2t_flags.create_hparams(HPARAMS_SET, overrides, problem_name=PROBLEM)


def _register():
  from t2t_lite import usr_dir  # pylint: disable=g-import-not-at-top
  import problems  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  usr_dir.import_usr_dir(USR_DIR)


# The batchings compared: (name, overrides, XLA). The set's own (packed rows) first.
BATCHINGS = (
    ("packed", "packed_length=-1", False),
    ("packed+XLA", "packed_length=-1", True),
    ("bucketed", "packed_length=0", False),
    ("padded", "packed_length=0,fixed_batch_shapes=true", False),
)


def packing_throughput(data_dir):
  """{batching: (real target tokens/s, real target tokens a batch, target tokens a batch)}
  of the training step under each of BATCHINGS, the same token budget a batch."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from benchmarks import train as train_bench  # pylint: disable=g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  _register()
  problem = registry.problem(PROBLEM)
  out = {}
  for name, overrides, xla in BATCHINGS:
    hp = _hparams(overrides)
    hp.deterministic_data = True
    batches = list(problem.dataset("train", data_dir, hp, seed=1).take(PACKING_BATCHES + 3))
    real = sum(int(tf.reduce_sum(tf.cast(b["targets"] > 0, tf.int64))) for b in batches[3:])
    padded = sum(int(tf.size(b["targets"])) for b in batches[3:])
    runner = train_bench._t2t_runner(tf, problem, data_dir, hp, batches, xla=xla)  # pylint: disable=protected-access
    seconds = min(runner() for _ in range(2))
    out[name] = (real / seconds, real / PACKING_BATCHES, padded / PACKING_BATCHES)
  return out


def packing_rows(pack):
  """Packed rows against bucketed batches (t2t_lite's batching without packing: the target's
  baseline) and against padding to max_length (what fixed shapes need: XLA, TPUs, or a
  Keras user's `padded_batch`)."""
  def describe(name):
    rate, real, total = pack[name]
    return "%s %.0f real target tokens/s (%.0f real of %.0f target tokens a batch)" % (
        name, rate, real, total)
  all_four = "; ".join(describe(name) for name, _, _ in BATCHINGS)
  best_packed = max(pack["packed"][0], pack["packed+XLA"][0])
  rows = []
  for baseline in ("bucketed", "padded"):
    ratio = best_packed / pack[baseline][0]
    rows.append(common.row(
        "packing: real target tokens/s, packed rows (best of no XLA / XLA) / %s batches" %
        baseline, ratio, "x", ">= %gx" % PACKING_TARGET, ratio >= PACKING_TARGET,
        "%s on %s, %d batches of %s's batch_size, best of 2 passes: %s" % (
            HPARAMS_SET, PROBLEM, PACKING_BATCHES, HPARAMS_SET, all_four)))
  return rows


def train_t2t(work, budget_s, log):
  """Runs t2t-trainer for budget_s seconds (SIGTERM), then averages its last checkpoints."""
  output_dir = os.path.join(work, "t2t_train")
  cmd = _script("t2t_trainer.py") + [
      "--t2t_usr_dir=" + USR_DIR, "--problem=" + PROBLEM, "--model=transformer",
      "--hparams_set=" + HPARAMS_SET, "--data_dir=" + os.path.join(work, "data"),
      "--output_dir=" + output_dir, "--schedule=train", "--train_steps=1000000",
      "--save_checkpoints_steps=200", "--keep_checkpoint_max=%d" % (AVERAGE_LAST + 2),
      "--random_seed=1"]
  with open(log, "a", encoding="utf-8") as f:
    f.write("$ %s\n" % " ".join(cmd))
    f.flush()
    start = time.time()
    proc = subprocess.Popen(cmd, env=_env(), stdout=f, stderr=subprocess.STDOUT)
    try:
      proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
      proc.send_signal(signal.SIGTERM)
      proc.wait()
  seconds = time.time() - start
  if proc.returncode != 0:
    raise RuntimeError("t2t-trainer failed (exit %d); see %s" % (proc.returncode, log))
  from t2t_lite import output_dir as output_dir_lib  # pylint: disable=g-import-not-at-top
  n = min(AVERAGE_LAST, len(output_dir_lib.checkpoint_paths(output_dir)))
  _check(_script("t2t_avg_all.py") + ["--model_dir=" + output_dir, "--n=%d" % n], log)
  return output_dir, seconds, n


def decode_t2t(run_dir, data_dir, sources, references, beam_size=4, checkpoint_path=None):
  """(BLEU, decode seconds, step) of a run's model on the test sentences, beam search."""
  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  from t2t_lite import output_dir as output_dir_lib  # pylint: disable=g-import-not-at-top
  from t2t_lite.decoding import bleu as bleu_lib  # pylint: disable=g-import-not-at-top
  from t2t_lite.decoding import runner  # pylint: disable=g-import-not-at-top
  from t2t_lite.task import Task  # pylint: disable=g-import-not-at-top
  _register()
  hp = output_dir_lib.load_hparams(run_dir)
  task = Task(PROBLEM, "transformer", hp, data_dir)
  model, path = decoding.restore_model(task, run_dir, checkpoint_path)
  decoder = decoding.Decoder(model, decoding.decode_hparams(
      "beam_size=%d,batch_size=32,extra_length=50" % beam_size))
  runner.decode_lines(decoder, task, sources[:32])  # compile (the peer's first batch is too)
  start = time.time()
  decoded = runner.decode_lines(decoder, task, sources)
  seconds = time.time() - start
  score = bleu_lib.bleu_score(decoded, references)
  with open(os.path.join(run_dir, "test.decodes"), "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in decoded)
  return score, seconds, os.path.basename(path)


def _corpus():
  from benchmarks import vocab  # pylint: disable=g-import-not-at-top
  return vocab._corpus_dir()  # pylint: disable=protected-access


def _read(path, limit):
  with open(path, encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f][:limit]


def _peer_available():
  try:
    import keras_hub  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
    return True
  except ImportError:
    return False


def run(budget_s=BUDGET_S, test_lines=TEST_LINES, work_dir=None):
  """The rows for BENCHMARKS.md."""
  corpus_dir, own_corpus = _corpus()
  if corpus_dir is None:
    return [common.row("translation BLEU, t2t_lite / keras-hub", 0.0, "x",
                       ">= %gx" % BLEU_TARGET, False,
                       "skipped: no corpus (no gettext catalogs on this machine)")]
  work = work_dir or tempfile.mkdtemp(prefix="t2t_bench_translate_")
  os.makedirs(work, exist_ok=True)
  log = os.path.join(work, "log.txt")
  rows = []
  try:
    data_dir = os.path.join(work, "data")
    _check(_script("t2t_datagen.py") + ["--t2t_usr_dir=" + USR_DIR, "--problem=" + PROBLEM,
                                        "--data_dir=" + data_dir, "--tmp_dir=" + corpus_dir],
           log)
    rows += packing_rows(packing_throughput(data_dir))
    sources = _read(os.path.join(corpus_dir, "inputs.test.txt"), test_lines)
    references = _read(os.path.join(corpus_dir, "targets.test.txt"), test_lines)
    output_dir, t2t_seconds, averaged = train_t2t(work, budget_s, log)
    t2t_bleu, t2t_decode_s, t2t_ckpt = decode_t2t(output_dir, data_dir, sources, references)
    avg_dir = os.path.join(output_dir, "avg")
    avg_bleu, _, avg_ckpt = decode_t2t(avg_dir, data_dir, sources, references)
    t2t_rate = len(sources) / t2t_decode_s
    details = "t2t_lite %s after %.0f s (%s): BLEU %.2f; last %d checkpoints averaged: %.2f" % (
        HPARAMS_SET, t2t_seconds, t2t_ckpt, t2t_bleu, averaged, avg_bleu)
    del avg_ckpt
    if not _peer_available():
      rows.append(common.row("translation BLEU (beam 4), t2t_lite / keras-hub", 0.0, "x",
                             ">= %gx" % BLEU_TARGET, False,
                             details + "; keras-hub skipped: pip install -e '.[bench]'"))
      return rows
    peer_json = os.path.join(work, "peer.json")
    hp = _hparams()
    _check([sys.executable, "-m", "benchmarks.translate_peer", "--corpus_dir=" + corpus_dir,
            "--work_dir=" + os.path.join(work, "peer"), "--budget_s=%g" % budget_s,
            "--test_lines=%d" % test_lines, "--layers=%d" % hp.num_hidden_layers,
            "--hidden_size=%d" % hp.hidden_size, "--filter_size=%d" % hp.filter_size,
            "--num_heads=%d" % hp.num_heads, "--dropout=%g" % hp.layer_prepostprocess_dropout,
            "--learning_rate=%g" % hp.learning_rate_constant,
            "--warmup_steps=%d" % hp.learning_rate_warmup_steps,
            "--label_smoothing=%g" % hp.label_smoothing, "--results=" + peer_json], log)
    with open(peer_json, encoding="utf-8") as f:
      peer = json.load(f)
    bleu_ratio = t2t_bleu / max(peer["bleu"], 1e-9)
    rows.append(common.row(
        "translation BLEU (beam 4) after %.0f s of training, t2t_lite / keras-hub" % budget_s,
        bleu_ratio, "x", ">= %gx" % BLEU_TARGET, bleu_ratio >= BLEU_TARGET,
        "%s; keras-hub: BLEU %.2f after %d steps (%.0f s of fit, %.0f real target tokens a "
        "step); sacreBLEU on the first %d test sentences of held-out catalogs" % (
            details, peer["bleu"], peer["steps"], peer["train_seconds"],
            peer["real_target_tokens_per_step"], len(sources))))
    decode_ratio = t2t_rate / peer["decode_sentences_per_second"]
    rows.append(common.row(
        "beam-4 decoding sentences/s, t2t_lite / keras-hub BeamSampler", decode_ratio, "x",
        ">= %gx" % DECODE_TARGET, decode_ratio >= DECODE_TARGET,
        "t2t_lite Decoder %.1f sentences/s (%.1f s), keras-hub cached TransformerDecoder + "
        "BeamSampler in an XLA tf.function %.1f/s (%.1f s); %d sentences, 32 a batch, the "
        "trained models of the row above" % (
            t2t_rate, t2t_decode_s, peer["decode_sentences_per_second"],
            peer["decode_seconds"], len(sources))))
    return rows
  finally:
    if own_corpus:
      shutil.rmtree(corpus_dir, ignore_errors=True)
    if not work_dir:
      shutil.rmtree(work, ignore_errors=True)


def main(argv):
  kwargs = {}
  for arg in argv[1:]:
    name, _, value = arg.partition("=")
    if name == "--budget_s":
      kwargs["budget_s"] = float(value)
    elif name == "--test_lines":
      kwargs["test_lines"] = int(value)
    elif name == "--work_dir":
      kwargs["work_dir"] = value
    else:
      sys.exit("unknown argument %s (--budget_s, --test_lines, --work_dir)" % arg)
  common.print_rows(run(**kwargs))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
