"""Decoding: cached greedy search against full recomputation, and the trained demo model's
exact-match rate.

    python -m benchmarks.decode            # the speed rows (~1 min on 2 cores), plus the
                                           # acceptance row when the demo model exists
    python -m benchmarks.decode --check    # only the acceptance check (exit 1 if missed)
    python -m benchmarks.decode --check --output_dir=DIR --data_dir=DIR --num_examples=1000

Speed: transformer_tiny (2 layers, 128 wide, 4 heads) with random weights decodes a batch of
32 inputs of 32 symbols into 128 output tokens each (EOS ignored, so every run decodes all
128), in one tf.function each way:

* cached: `t2t_lite.decoding.decode_ids` (encoder once, its keys/values projected once, a
  key/value cache per decoder layer, one decoder position per step);
* full recomputation: at every step the whole model runs on the inputs and the prefix
  decoded so far (tensor2tensor's slow greedy path), in a tf.while_loop whose prefix grows.

Both give the same tokens (checked); the figure is the ratio of their tokens per second
(neither XLA-compiled). The cached search compiled with XLA is shown too, for information.
Timings are the best of interleaved repetitions after a warm-up, so a busy machine slows both
alike.

Acceptance: a transformer_tiny trained on algorithmic_reverse_binary40 (the README's demo,
trained into ./t2t_work/train/algorithmic_reverse_binary40-transformer_tiny with its data in
./t2t_work/data) must decode >= 99% of held-out dev inputs (length <= 40) exactly right with
greedy search: `t2t_lite.decoding.exact_match_rate`.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import common  # noqa: E402

SPEED = {"batch": 32, "input_length": 32, "output_tokens": 128, "vocab": 16, "target": 5.0,
         "repeats": 3}
DEMO = {"problem": "algorithmic_reverse_binary40", "model": "transformer",
        "hparams_set": "transformer_tiny",
        "output_dir": os.path.join("t2t_work", "train",
                                   "algorithmic_reverse_binary40-transformer_tiny"),
        "data_dir": os.path.join("t2t_work", "data"), "num_examples": 1000, "target": 0.99}


def tiny_model(num_symbols, seed=0):
  """transformer_tiny with random weights (seeded) for DEMO's problem with `num_symbols`
  symbols (num_symbols + 2 ids), built as t2t-decoder builds it: `Task.build_model(
  inference=True)`, which gives it the precision decoding runs in."""
  from problems import algorithmic  # pylint: disable=g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite import task as task_lib  # pylint: disable=g-import-not-at-top
  from t2t_lite.bin import common as bin_common  # pylint: disable=g-import-not-at-top
  bin_common.import_registrations(None)
  problem = registry.problem(DEMO["problem"])
  if problem.num_symbols != num_symbols:
    problem = type("Reverse%d" % num_symbols, (algorithmic.AlgorithmicReverseBinary40,),
                   {"num_symbols": num_symbols})()
  keras.utils.set_random_seed(seed)
  task = task_lib.Task(problem, DEMO["model"], registry.hparams(DEMO["hparams_set"]), None)
  return task.build_model(inference=True)


def _uncached_greedy_fn(model, num_tokens):
  """Greedy decoding that reruns the whole model on the growing prefix at every step."""

  @tf.function
  def run(inputs):
    batch = tf.shape(inputs)[0]

    def body(i, ids):
      targets = tf.concat([ids, tf.zeros([batch, 1], tf.int32)], axis=1)
      logits = model({"inputs": inputs, "targets": targets}, training=False)
      token = tf.argmax(logits[:, -1], axis=-1, output_type=tf.int32)
      return i + 1, tf.concat([ids, token[:, None]], axis=1)

    _, ids = tf.while_loop(
        lambda i, ids: i < num_tokens, body, (tf.constant(0), tf.zeros([batch, 0], tf.int32)),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None])))
    return ids

  return run


def speed_rows():
  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  cfg = SPEED
  model = tiny_model(cfg["vocab"] - 2)
  rng = np.random.default_rng(0)
  inputs = tf.constant(rng.integers(2, cfg["vocab"], [cfg["batch"], cfg["input_length"]]),
                       tf.int32)
  extra = cfg["output_tokens"] - cfg["input_length"]
  cached = tf.function(lambda x: decoding.decode_ids(model, x, beam_size=1, extra_length=extra,
                                                     eos_id=None)["outputs"][:, 0])
  uncached = _uncached_greedy_fn(model, cfg["output_tokens"])
  # The first calls trace the functions (the warm-up) and check that both agree.
  same = np.array_equal(cached(inputs).numpy(), uncached(inputs).numpy())
  (t_cached, t_uncached), _ = common.best_times(
      [lambda: cached(inputs).numpy(), lambda: uncached(inputs).numpy()], cfg["repeats"],
      warmup=0)
  xla = tf.function(lambda x: decoding.decode_ids(model, x, beam_size=1, extra_length=extra,
                                                  eos_id=None)["outputs"][:, 0],
                    jit_compile=True)
  same_xla = np.array_equal(xla(inputs).numpy(), cached(inputs).numpy())
  (t_xla,), _ = common.best_times([lambda: xla(inputs).numpy()], cfg["repeats"], warmup=0)
  tokens = cfg["batch"] * cfg["output_tokens"]
  ratio = t_uncached / t_cached
  shape = "batch %d, %d input symbols, %d output tokens, transformer_tiny" % (
      cfg["batch"], cfg["input_length"], cfg["output_tokens"])
  return [
      common.row("decode: cached greedy tokens/s", tokens / t_cached, "tokens/s", "-", True,
                 shape),
      common.row("decode: full-recomputation greedy tokens/s", tokens / t_uncached,
                 "tokens/s", "-", True, shape + "; the whole model reruns every step"),
      common.row("decode: cached greedy tokens/s, XLA (decode_hparams xla=true)",
                 tokens / t_xla, "tokens/s", "-", same_xla,
                 shape + "; same tokens: %s" % ("yes" if same_xla else "NO")),
      common.row("decode: cached / full recomputation speed-up at 128 tokens", ratio, "x",
                 ">= %.0fx" % cfg["target"], ratio >= cfg["target"] and same,
                 "same tokens: %s" % ("yes" if same else "NO")),
  ]


def acceptance_row(output_dir=None, data_dir=None, num_examples=None):
  """The demo model's exact-match row, or None when the demo model is not there."""
  from t2t_lite.bin import common as bin_common  # pylint: disable=g-import-not-at-top
  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  output_dir = output_dir or os.path.join(_ROOT, DEMO["output_dir"])
  data_dir = data_dir or os.path.join(_ROOT, DEMO["data_dir"])
  num_examples = num_examples or DEMO["num_examples"]
  if not tf.train.latest_checkpoint(output_dir):
    return None
  bin_common.import_registrations(None)
  t = common.timed(lambda: decoding.exact_match_rate(
      output_dir, data_dir, DEMO["problem"], DEMO["model"], DEMO["hparams_set"], num_examples))
  rate = t.result
  return common.row(
      "decode: %s exact match (greedy, dev, length <= 40)" % DEMO["problem"], rate,
      "fraction", ">= %.2f" % DEMO["target"], rate >= DEMO["target"],
      "%s examples from %s (%.0f s)" % (
          "all dev" if num_examples < 0 else num_examples,
          os.path.relpath(output_dir, _ROOT), t.seconds))


def run():
  rows = speed_rows()
  row = acceptance_row()
  if row is not None:
    rows.append(row)
  return rows


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true",
                      help="only the trained demo model's exact-match check")
  parser.add_argument("--output_dir", default=None)
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--num_examples", type=int, default=None)
  args = parser.parse_args(argv[1:])
  if args.check:
    row = acceptance_row(args.output_dir, args.data_dir, args.num_examples)
    if row is None:
      print("no checkpoint in %s: train the README's demo model first." %
            (args.output_dir or DEMO["output_dir"]))
      return 1
    common.print_rows([row])
    return 0 if row["ok"] else 1
  common.print_rows(run())
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
