"""Longer than trained: reversal and identity decoded at up to 10x the training length.

Each row trains a transformer on `algorithmic_reverse_binary40` or
`algorithmic_identity_binary40` (inputs of 1-40 symbols, t2t-datagen's data) with an hparams set
and a positional option, then greedy-decodes seeded random inputs of each length in LENGTHS
(and of random lengths 1-40, "1-40") and prints, per length, the fraction decoded exactly
(the whole output, EOS included) and the per-token accuracy (every target position and the
EOS; a token past a short output's end counts as wrong).

    python -m benchmarks.length                      # every row (one training each)
    python -m benchmarks.length --rows=length        # the length set's rows only
    python -m benchmarks.length --train_steps=500 --num=20   # a smoke check
    python -m benchmarks.length --work_dir=DIR       # again: the rows DIR holds are read back

Targets (issue "Longer than trained"): the length set (`transformer_tiny_length`, 3000 steps)
decodes >= 0.99 of reversals and of copies exactly at every length from 1 to 400, trained
within 10 minutes on 2 CPU cores; the demo set (`transformer_tiny`, sinusoidal positions, trained
as the README demo was until 2026-12-05: 1500 steps) is the baseline. The other rows (reversal only) each take one of the
length set's choices away: the ablation behind its docstring.

Each training runs in its own process (its own TensorFlow state); the seconds are its
training's, data generation excluded (shared by the rows).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

from benchmarks import common  # noqa: E402

PROBLEMS = {"reverse": "algorithmic_reverse_binary40",
            "identity": "algorithmic_identity_binary40"}
LENGTHS = [40, 60, 80, 120, 200, 400]
# name -> (hparams set, overrides, training steps, the problems it runs on). The rows after
# the first two take one of the length set's choices away (the ablation behind its docstring).
LENGTH_STEPS = 3000
ROWS = {
    "length": ("transformer_tiny_length", "", LENGTH_STEPS, ("reverse", "identity")),
    # transformer_tiny trained as the README demo trained it until 2026-12-05 (the figures in
    # BENCHMARKS.md): 8 packed rows a batch, a cosine from 0.001, no clipping, 1500 steps.
    "demo": ("transformer_tiny", "batch_size=512,learning_rate_schedule=cosine,"
             "learning_rate_constant=0.001,clip_grad_norm=0", 1500, ("reverse", "identity")),
    "length pos=timing": ("transformer_tiny_length", "pos=timing", LENGTH_STEPS, ("reverse",)),
    "length pos=random": ("transformer_tiny_length", "pos=random", LENGTH_STEPS, ("reverse",)),
    "length pos=relative": ("transformer_tiny_length", "pos=relative,relative_max_distance=16",
                            LENGTH_STEPS, ("reverse",)),
    "length memory_pos=none": ("transformer_tiny_length", "memory_pos=none", LENGTH_STEPS,
                               ("reverse",)),
    "length relative_max_distance=32": ("transformer_tiny_length",
                                        "relative_num_buckets=32,relative_max_distance=32",
                                        LENGTH_STEPS, ("reverse",)),
    "length memory_length_scale=0": ("transformer_tiny_length", "memory_length_scale=0",
                                         LENGTH_STEPS, ("reverse",)),
    "length relative_bias_scale=1": ("transformer_tiny_length", "relative_bias_scale=1",
                                     LENGTH_STEPS, ("reverse",)),
}
MAX_LENGTH_TARGET = 400


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", default="",
                      help="comma-separated row names or prefixes (default: all): %s" %
                      ", ".join(ROWS))
  parser.add_argument("--problems", default="reverse,identity")
  parser.add_argument("--train_steps", type=int, default=0,
                      help="override every row's training steps (0: the row's own)")
  parser.add_argument("--hparams", default="", help="extra overrides for every row")
  parser.add_argument("--num", type=int, default=200, help="decoded inputs per length")
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--work_dir", default="")
  parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # a row, in a subprocess
  args = parser.parse_args(argv)
  return {"rows": args.rows, "problems": args.problems, "train_steps": args.train_steps,
          "hparams": args.hparams, "num": args.num, "seed": args.seed,
          "work_dir": args.work_dir, "one": args.one}


def expected_output(problem, symbols):
  if problem == "reverse":
    return symbols[::-1]
  if problem == "identity":
    return list(symbols)
  raise ValueError("unknown problem %r" % problem)


def test_inputs(length, num, seed, num_symbols=2):
  """`num` seeded lists of symbol ids (2 ..), of `length` symbols (0: random lengths 1-40)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng([seed, length])
  out = []
  for _ in range(num):
    n = length or int(rng.integers(1, 41))
    out.append([int(s) + 2 for s in rng.integers(0, num_symbols, n)])
  return out


def score(outputs, expected):
  """(exact-match fraction, per-token accuracy) of decoded id lists (without EOS) against
  expected ones; each expected list's EOS counts as one more token."""
  exact = tokens = right = 0
  for out, want in zip(outputs, expected):
    exact += out == want
    want = want + [1]
    got = out + [1]
    tokens += len(want)
    right += sum(1 for i, w in enumerate(want) if i < len(got) and got[i] == w)
  return exact / len(expected), right / tokens


def evaluate_lengths(model, problem, lengths, num, seed):
  """{length label: (exact, per_token)} of greedy decodes; label "1-40" for mixed lengths."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from t2t_lite.decoding import decoder as decoder_lib  # pylint: disable=g-import-not-at-top

  @tf.function(reduce_retracing=True)
  def run(inputs):
    return decoder_lib.decode_ids(model, inputs, beam_size=1, extra_length=10)["outputs"]

  results = {}
  for length in [0] + list(lengths):
    symbols = test_inputs(length, num, seed)
    width = max(len(s) for s in symbols) + 1
    batch = np.zeros((len(symbols), width), np.int32)
    for i, s in enumerate(symbols):
      batch[i, :len(s) + 1] = s + [1]
    outputs = []
    for start in range(0, len(symbols), 100):
      ids = run(tf.constant(batch[start:start + 100])).numpy()[:, 0]
      outputs.extend(decoder_lib.strip_ids(row) for row in ids)
    results["1-40" if length == 0 else str(length)] = score(
        outputs, [expected_output(problem, s) for s in symbols])
  return results


def train_and_evaluate(spec):
  """One row in this process: trains, then decodes every length. Returns the record."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  from t2t_lite.bin import common as bin_common  # pylint: disable=g-import-not-at-top
  from t2t_lite.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  del tf
  bin_common.import_registrations(None)
  problem_name = PROBLEMS[spec["problem"]]
  hparams = t2t_flags.create_hparams(spec["hparams_set"], spec["overrides"],
                                     problem_name=problem_name)
  steps = spec["train_steps"]
  trainer = trainer_lib.Trainer(problem_name, "transformer", hparams, spec["data_dir"],
                                spec["output_dir"], steps, random_seed=spec["seed"],
                                save_checkpoints_steps=0, log_step_count_steps=500)
  start = time.time()
  trainer.train(train_steps=steps)
  seconds = time.time() - start
  with trainer.ema_weights():
    results = evaluate_lengths(trainer.model, spec["problem"], spec["lengths"], spec["num"],
                               spec["seed"])
  return {"row": spec["row"], "problem": spec["problem"], "steps": steps,
          "train_seconds": seconds, "results": results}


def _generate(data_dir, problem):
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.bin import common as bin_common  # pylint: disable=g-import-not-at-top
  bin_common.import_registrations(None)
  p = registry.problem(PROBLEMS[problem])
  if not any(n.startswith(p.dataset_filename()) for n in
             (os.listdir(data_dir) if os.path.isdir(data_dir) else [])):
    os.makedirs(data_dir, exist_ok=True)
    p.generate_data(data_dir, data_dir)


def _selected(rows):
  if not rows:
    return list(ROWS)
  wanted = [r.strip() for r in rows.split(",") if r.strip()]
  out = [name for name in ROWS if any(name == w or name.startswith(w + " ") for w in wanted)]
  unknown = [w for w in wanted if not any(n == w or n.startswith(w + " ") for n in ROWS)]
  if unknown:
    raise SystemExit("benchmarks.length: unknown rows %s (known: %s)" % (unknown, list(ROWS)))
  return out


def run(rows="", problems="reverse,identity", train_steps=0, hparams="", num=200, seed=1,
        work_dir="", one=""):
  if one:
    record = train_and_evaluate(json.loads(one))
    print("RECORD " + json.dumps(record))
    return []
  work_dir = work_dir or tempfile.mkdtemp(prefix="t2t_length_")
  data_dir = os.path.join(work_dir, "data")
  out = []
  for problem in [p.strip() for p in problems.split(",") if p.strip()]:
    _generate(data_dir, problem)
    for name in _selected(rows):
      hparams_set, overrides, steps, row_problems = ROWS[name]
      if problem not in row_problems:
        continue
      spec = {"row": name, "problem": problem, "hparams_set": hparams_set,
              "overrides": ",".join(filter(None, [overrides, hparams])),
              "train_steps": train_steps or steps, "seed": seed, "num": num,
              "lengths": LENGTHS, "data_dir": data_dir,
              "output_dir": os.path.join(work_dir, "runs", problem,
                                         name.replace(" ", "_").replace("=", "-"))}
      record = _run_row(spec, os.path.join(work_dir, "records"))
      print(json.dumps(record), flush=True)
      out.extend(_rows(record))
  return out


def _run_row(spec, records_dir):
  """A row's record: trained and decoded in a subprocess, or read back from `records_dir`
  where a run with the same work_dir already measured the same row (same set, overrides,
  steps, seed, inputs), so an interrupted run goes on where it stopped."""
  key = {k: spec[k] for k in ("row", "problem", "hparams_set", "overrides", "train_steps",
                              "seed", "num", "lengths")}
  path = os.path.join(records_dir, "%s_%s.json" % (
      spec["problem"], spec["row"].replace(" ", "_").replace("=", "-")))
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    if saved.get("spec") == key:
      return saved
  proc = subprocess.run([sys.executable, "-m", "benchmarks.length", "--one", json.dumps(spec)],
                        cwd=_ROOT, capture_output=True, text=True, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RECORD ")]
  if proc.returncode or not lines:
    raise SystemExit("benchmarks.length: row %r on %s failed:\n%s" %
                     (spec["row"], spec["problem"], proc.stderr[-3000:]))
  record = dict(json.loads(lines[-1][len("RECORD "):]), spec=key)
  os.makedirs(records_dir, exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(record, f)
  return record


def _rows(record):
  results = record["results"]
  worst = min(exact for exact, _ in results.values())
  details = "; ".join("%s: %.3f/%.3f" % (k, e, t) for k, (e, t) in results.items())
  is_set = record["row"] == "length"
  return [common.row(
      "%s %s: worst exact match over lengths 1-400 (%d steps, %.0f s)" % (
          record["row"], record["problem"], record["steps"], record["train_seconds"]),
      worst, "fraction", ">= 0.99" if is_set else "-",
      (worst >= 0.99 and record["train_seconds"] <= 600) if is_set else True,
      "exact/per-token by length: " + details)]


if __name__ == "__main__":
  common.print_rows(run(**parse_args()))
