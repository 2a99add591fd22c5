"""Helpers the benchmarks share: timing, the machine's peak matmul rate, result rows."""
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def best_time(fn, repeats=5, warmup=2, min_seconds=0.0):
  """Best wall time of `fn()` over `repeats` runs after `warmup` runs (seconds).

  `fn` must block until its work is done (call .numpy() or similar on its result)."""
  for _ in range(warmup):
    fn()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  if min_seconds and best < min_seconds:
    # Too short to time reliably: time a loop instead.
    n = max(2, int(min_seconds / max(best, 1e-6)))
    start = time.perf_counter()
    for _ in range(n):
      fn()
    best = (time.perf_counter() - start) / n
  return best


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

  seconds = best_time(lambda: run().numpy(), repeats=repeats, warmup=2)
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
