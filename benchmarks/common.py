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


def matmul_peak_flops(n=1024, dtype="float32", repeats=5):
  """FLOP/s of an n x n x n matmul in TensorFlow on this machine, measured now."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  a = tf.random.normal([n, n], dtype=dtype)
  b = tf.random.normal([n, n], dtype=dtype)
  matmul = tf.function(lambda x, y: tf.matmul(x, y))
  seconds = best_time(lambda: matmul(a, b).numpy(), repeats=repeats, warmup=2)
  return 2.0 * n ** 3 / seconds


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
