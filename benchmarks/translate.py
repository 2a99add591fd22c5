"""Translation on real text, offline: README's recipe against a keras-hub pipeline, same budget.

    pip install -e '.[bench]'                  # keras-hub, for the peer
    python -m benchmarks.translate [--budget_s=1200] [--test_lines=1000] [--work_dir=DIR]
    python -m benchmarks.translate --work_dir=DIR --decode_only   # decode DIR's models again

The corpus: English->German pairs from the gettext catalogs of this machine
(benchmarks/gettext_corpus.py; split by catalog, so no test sentence is seen in training).
Without catalogs the rows say the benchmark was skipped.

In one run:

1. Packing: real (non-pad) target tokens per second of t2t_lite's training step on this
   corpus, the set's packed rows (without and with XLA) against the same token budget bucketed
   by length and padded to max_length. Same loop, same number of batches. Target: >= 2x.
2. t2t_lite as README's "Translate" section runs it: `t2t-datagen --problem=text2text_tmpdir`
   (its default vocabulary), `t2t-trainer --hparams_set=transformer_translate_cpu
   --schedule=train` stopped with SIGTERM `--budget_s` seconds after its launch (it saves a
   checkpoint and exits), then README's decode hparams (beam 4, alpha 0.6) over the first
   `--test_lines` test sentences, one stream (no XLA, no shards), and sacreBLEU. The weights
   themselves (without the set's moving average) are scored as well, and the decode is
   timed again with XLA in a shard per core (a second row).
3. The keras-hub pipeline (benchmarks/translate_peer.py: bucketed batches of the same token
   budget, pre-norm, byte-fallback SentencePiece of the same size, its cached beam sampler
   tuned) with the same budget of `model.fit`, the same model size, in its own process, with
   the compile options `--peer_flags` (its fastest on the machine).

Targets: t2t_lite's BLEU >= 1.3x the peer's; its beam-4 decoding >= 2x faster, one stream
against one stream (sentences/s over the same test sentences, compilation excluded on both
sides); real target tokens trained on per second >= the peer's. The budget counts
t2t-trainer's whole process (imports and graph building included) but only the peer's `fit`,
so any advantage given is the peer's.
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
PROBLEM = "text2text_tmpdir"
HPARAMS_SET = "transformer_translate_cpu"
DECODE_HPARAMS = "beam_size=4,alpha=0.6"  # README's
BUDGET_S = 1200.0
TEST_LINES = 1000
BLEU_TARGET = 1.3
DECODE_TARGET = 2.0
THROUGHPUT_TARGET = 1.0
PACKING_TARGET = 2.0
PACKING_BATCHES = 12
# The peer's compile options: its fastest training step on this kind of machine (bfloat16
# where the CPU computes it; `python -m benchmarks.translate_peer --help`).
PEER_FLAGS = "--mixed_precision=mixed_bfloat16 --jit_compile=0"


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
  import problems  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top


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


def train_t2t(work, budget_s, log, seed=1):
  """Runs README's t2t-trainer command for budget_s seconds (then SIGTERM); returns
  (output_dir, seconds, steps)."""
  output_dir = os.path.join(work, "t2t_train")
  cmd = _script("t2t_trainer.py") + [
      "--problem=" + PROBLEM, "--model=transformer", "--hparams_set=" + HPARAMS_SET,
      "--data_dir=" + os.path.join(work, "data"), "--output_dir=" + output_dir,
      "--schedule=train", "--train_steps=1000000", "--random_seed=%d" % seed]
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
  newest = output_dir_lib.checkpoint_paths(output_dir)[0]  # newest first
  return output_dir, seconds, int(newest.rsplit("-", 1)[1])


def decode_t2t(run_dir, data_dir, sources, references, decode_hparams=DECODE_HPARAMS,
               hparams_overrides=""):
  """{"bleu", "seconds", "length_ratio"} of a run's model on the test sentences, decoded as
  t2t-decoder does (`hparams_overrides` changes the run's hparams, e.g. ema_momentum=0.0 to
  decode the weights rather than their moving average)."""
  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  from t2t_lite import output_dir as output_dir_lib  # pylint: disable=g-import-not-at-top
  from t2t_lite.decoding import bleu as bleu_lib  # pylint: disable=g-import-not-at-top
  from t2t_lite.decoding import runner  # pylint: disable=g-import-not-at-top
  from t2t_lite.task import Task  # pylint: disable=g-import-not-at-top
  _register()
  hp = output_dir_lib.load_hparams(run_dir)
  if hparams_overrides:
    hp.parse(hparams_overrides)
  task = Task(PROBLEM, "transformer", hp, data_dir)
  model, _ = decoding.restore_model(task, run_dir)
  decoder = decoding.Decoder(model, decoding.decode_hparams(decode_hparams))
  runner.decode_lines(decoder, task, sources)  # trace / compile every shape first
  start = time.time()
  decoded = runner.decode_lines(decoder, task, sources)
  seconds = time.time() - start
  with open(os.path.join(run_dir, "test.decodes"), "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in decoded)
  return {"bleu": bleu_lib.bleu_score(decoded, references), "seconds": seconds,
          "length_ratio": _length_ratio(decoded, references)}


def _length_ratio(decoded, references):
  return sum(len(d.split()) for d in decoded) / max(1, sum(len(r.split()) for r in references))


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


def run_peer(corpus_dir, work, budget_s, test_lines, log, peer_flags=PEER_FLAGS,
             decode_only=False, seed=1):
  """The keras-hub pipeline's result dict (benchmarks/translate_peer.py), same model size;
  with decode_only, the model its earlier run in `work` saved, decoded again."""
  peer_json = os.path.join(work, "peer.json")
  hp = _hparams()
  _check([sys.executable, "-m", "benchmarks.translate_peer", "--corpus_dir=" + corpus_dir,
          "--work_dir=" + os.path.join(work, "peer"), "--budget_s=%g" % budget_s,
          "--test_lines=%d" % test_lines, "--layers=%d" % hp.num_hidden_layers,
          "--hidden_size=%d" % hp.hidden_size, "--filter_size=%d" % hp.filter_size,
          "--num_heads=%d" % hp.num_heads, "--dropout=%g" % hp.layer_prepostprocess_dropout,
          "--vocab_size=%d" % registry_problem().approx_vocab_size,
          "--batch_tokens=%d" % hp.batch_size, "--max_length=%d" % hp.max_length,
          "--warmup_steps=%d" % hp.learning_rate_warmup_steps,
          "--label_smoothing=%g" % hp.label_smoothing, "--results=" + peer_json,
          "--seed=%d" % seed]
         + peer_flags.split() + (["--decode_only"] if decode_only else []), log)
  with open(peer_json, encoding="utf-8") as f:
    return json.load(f)


def registry_problem():
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  _register()
  return registry.problem(PROBLEM)


def run(budget_s=BUDGET_S, test_lines=TEST_LINES, work_dir=None, peer_flags=PEER_FLAGS,
        decode_only=False, seed=1):
  """The rows for BENCHMARKS.md. decode_only: decode again the two models a run left in
  work_dir (its training figures kept), e.g. after a change to decoding."""
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
    _check(_script("t2t_datagen.py") + ["--problem=" + PROBLEM, "--data_dir=" + data_dir,
                                        "--tmp_dir=" + corpus_dir], log)
    sources = _read(os.path.join(corpus_dir, "inputs.test.txt"), test_lines)
    references = _read(os.path.join(corpus_dir, "targets.test.txt"), test_lines)
    trained_json = os.path.join(work, "t2t_train.json")
    if decode_only:  # the training figures of the run already in work_dir
      with open(trained_json, encoding="utf-8") as f:
        trained = json.load(f)
      pack = trained["pack"]
      rows += packing_rows(pack)
      output_dir = os.path.join(work, "t2t_train")
    else:
      pack = packing_throughput(data_dir)
      rows += packing_rows(pack)
      output_dir, seconds, steps = train_t2t(work, budget_s, log, seed)
      trained = {"seconds": seconds, "steps": steps, "pack": pack}
      with open(trained_json, "w", encoding="utf-8") as f:
        json.dump(trained, f)
    t2t_seconds, t2t_steps = trained["seconds"], trained["steps"]
    t2t = decode_t2t(output_dir, data_dir, sources, references)
    raw = decode_t2t(output_dir, data_dir, sources, references,
                     hparams_overrides="ema_momentum=0.0")
    sharded = decode_t2t(output_dir, data_dir, sources, references,
                         DECODE_HPARAMS + ",xla=true,shards=0")
    t2t_rate = len(sources) / t2t["seconds"]
    t2t_tokens = pack["packed"][1] * t2t_steps / t2t_seconds
    details = ("%st2t_lite %s on %s after %.0f s (step %d): BLEU %.2f (the weights without "
               "their moving average: %.2f), output/reference words %.2f" % (
                   "the models a full run of this benchmark trained, decoded again: "
                   if decode_only else "",
                   HPARAMS_SET, PROBLEM, t2t_seconds, t2t_steps, t2t["bleu"], raw["bleu"],
                   t2t["length_ratio"]))
    if not _peer_available():
      rows.append(common.row("translation BLEU (beam 4), t2t_lite / keras-hub", 0.0, "x",
                             ">= %gx" % BLEU_TARGET, False,
                             details + "; keras-hub skipped: pip install -e '.[bench]'"))
      return rows
    peer = run_peer(corpus_dir, work, budget_s, test_lines, log, peer_flags, decode_only,
                    seed)
    bleu_ratio = t2t["bleu"] / max(peer["bleu"], 1e-9)
    rows.append(common.row(
        "translation BLEU (beam 4) after %.0f s of training, t2t_lite / keras-hub" % budget_s,
        bleu_ratio, "x", ">= %gx" % BLEU_TARGET, bleu_ratio >= BLEU_TARGET,
        "%s; keras-hub (%s): BLEU %.2f after %d steps (%.0f s of fit), output/reference words "
        "%.2f; sacreBLEU on the first %d test sentences of held-out catalogs" % (
            details, peer_flags, peer["bleu"], peer["steps"], peer["train_seconds"],
            peer.get("output_to_reference_length", 0.0), len(sources))))
    tokens_ratio = t2t_tokens / peer["real_target_tokens_per_second"]
    rows.append(common.row(
        "real target tokens trained on per second, t2t_lite / keras-hub", tokens_ratio, "x",
        ">= %gx" % THROUGHPUT_TARGET, tokens_ratio >= THROUGHPUT_TARGET,
        "t2t_lite %.0f/s (%d steps x %.0f real target tokens in %.0f s of its whole process); "
        "keras-hub %.0f/s (%d steps x %.0f in %.0f s of fit; %.0f%% of its target slots real)"
        % (t2t_tokens, t2t_steps, pack["packed"][1], t2t_seconds,
           peer["real_target_tokens_per_second"], peer["steps"],
           peer["real_target_tokens_per_step"], peer["train_seconds"],
           100 * peer.get("real_target_share", 0.0))))
    peer_rate = peer["decode_sentences_per_second"]
    decode_ratio = t2t_rate / peer_rate
    rows.append(common.row(
        "beam-4 decoding sentences/s, one stream each, t2t_lite / keras-hub", decode_ratio,
        "x", ">= %gx" % DECODE_TARGET, decode_ratio >= DECODE_TARGET,
        "t2t_lite Decoder (%s) %.1f sentences/s (%.1f s); keras-hub cached decoders + "
        "BeamSampler in an XLA tf.function %.1f/s (%.1f s); %d sentences, 32 a batch, sorted "
        "by length on both sides, the trained models of the rows above" % (
            DECODE_HPARAMS, t2t_rate, t2t["seconds"], peer_rate, peer["decode_seconds"],
            len(sources))))
    shard_rate = len(sources) / sharded["seconds"]
    rows.append(common.row(
        "beam-4 decoding sentences/s, t2t_lite in a shard per core (xla=true) / keras-hub's "
        "one stream", shard_rate / peer_rate, "x", "(printed)", True,
        "t2t_lite %.1f sentences/s (%.1f s), same decodes as one stream: BLEU %.2f" % (
            shard_rate, sharded["seconds"], sharded["bleu"])))
    return rows
  finally:
    if own_corpus:
      shutil.rmtree(corpus_dir, ignore_errors=True)
    if not work_dir:
      shutil.rmtree(work, ignore_errors=True)


def parse_args(args):
  """run()'s keyword arguments from command-line arguments (also what run_all passes on)."""
  kwargs = {}
  for arg in args:
    name, _, value = arg.partition("=")
    if name == "--budget_s":
      kwargs["budget_s"] = float(value)
    elif name == "--test_lines":
      kwargs["test_lines"] = int(value)
    elif name == "--work_dir":
      kwargs["work_dir"] = value
    elif name == "--peer_flags":
      kwargs["peer_flags"] = value
    elif name == "--decode_only":
      kwargs["decode_only"] = True
    elif name == "--seed":
      kwargs["seed"] = int(value)
    else:
      sys.exit("unknown argument %s (--budget_s, --test_lines, --work_dir, --peer_flags, "
               "--decode_only, --seed)" % arg)
  return kwargs


def main(argv):
  common.print_rows(run(**parse_args(argv[1:])))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
