"""Helpers the benchmarks share: timing, the machine's peak matmul rate, result rows."""
import collections
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


Timing = collections.namedtuple("Timing", ["seconds", "cpu_seconds", "result"])


def timed(fn):
  """One call of `fn()`: Timing(wall seconds, process CPU seconds (all threads), its result).

  The result is handed back after the clock stops, so whatever dropping it costs (deleting a
  tf.data iterator that fed a long tf.function call can block for seconds) is not timed. On a
  machine shared with other jobs the CPU time is the steadier measure of the work done."""
  wall, cpu = time.perf_counter(), time.process_time()
  result = fn()
  return Timing(time.perf_counter() - wall, time.process_time() - cpu, result)


def best_times(fns, repeats=5, warmup=2, inner=1, sync=None):
  """Best seconds per call of each of `fns` (functions of no arguments), interleaved: every
  repetition runs each fn in turn, so that a busy spell on a shared machine slows one
  repetition of each rather than deciding a ratio, and the minimum is the undisturbed time.

  Each fn is called `warmup` times first (not timed), then `repeats` times `inner` calls in a
  row; `sync(result)` (when given) blocks on the result of the warm-up calls and of the last
  call of each row, inside the clock, for a fn that does not block until its work is done
  itself (or call .numpy() on the result in the fn).

  Returns:
    ([best wall seconds per call of each fn], [best process CPU seconds per call of each]).
  """
  def run(fn, calls):
    for _ in range(calls - 1):
      fn()
    result = fn()
    if sync is not None:
      sync(result)

  for fn in fns:
    for _ in range(warmup):
      run(fn, 1)
  wall = [float("inf")] * len(fns)
  cpu = [float("inf")] * len(fns)
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      t = timed(lambda fn=fn: run(fn, inner))
      wall[i] = min(wall[i], t.seconds / inner)
      cpu[i] = min(cpu[i], t.cpu_seconds / inner)
  return wall, cpu


def matmul_peak_flops(n=1024, dtype="float32", repeats=5, k=None, m=None, chain=8):
  """FLOP/s of [n, k] x [k, m] matmuls (default n x n x n) in TensorFlow, measured now.

  One call runs `chain` independent matmuls (distinct left operands) and returns a scalar, so
  the timing holds neither a copy of the product to the host nor a per-call dispatch: timing one
  1024^3 matmul with its 4 MB result fetched read 220-290 GFLOP/s from run to run on this
  machine, where the machine sustains about 305.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  k = n if k is None else k
  m = n if m is None else m
  lefts = [tf.random.normal([n, k], dtype=dtype, seed=i) for i in range(chain)]
  right = tf.random.normal([k, m], dtype=dtype, seed=chain)

  @tf.function
  def run():
    # Each product is computed in full (TensorFlow does not narrow a matmul to the slice
    # read from it); one element of each is enough to wait for it.
    return tf.add_n([tf.matmul(left, right)[0, 0] for left in lefts])

  (seconds,), _ = best_times([lambda: run().numpy()], repeats=repeats, warmup=2)
  return chain * 2.0 * n * k * m / seconds


def row(name, value, unit, target, ok, details=""):
  """One result: a figure with its unit, the target it is held to, and whether it met it."""
  return {"name": name, "value": float(value), "unit": unit, "target": target,
          "ok": bool(ok), "details": details}


def machine_description():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return "%d cores (%s), Python %s, TensorFlow %s, Keras %s" % (
      os.cpu_count() or 0, cpu, platform.python_version(), tf.__version__,
      __import__("keras").__version__)


def main(doc, run, argv=None):
  """`python -m benchmarks.NAME` for a benchmark without options: --help prints its docstring
  `doc`; otherwise it runs `run()` and prints the rows."""
  import argparse  # pylint: disable=g-import-not-at-top
  argparse.ArgumentParser(description=doc,
                          formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
  print_rows(run())
  return 0


def print_rows(rows):
  for r in rows:
    print("%-60s %12.3f %-10s target %-10s %s  %s" % (
        r["name"], r["value"], r["unit"], r["target"], "ok" if r["ok"] else "MISSED",
        r.get("details", "")))


def report_steps_to_target(record, results_path=""):
  """Prints a steps-to-target run's RESULT line (benchmarks/peer.py reads it) and appends the
  run as one JSON line to `results_path` when given."""
  import json  # pylint: disable=g-import-not-at-top
  print("RESULT %s seed %d: steps to %.2f = %s" % (record["name"], record["seed"],
                                                  record["target"], record["steps_to_target"]))
  if results_path:
    with open(results_path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
