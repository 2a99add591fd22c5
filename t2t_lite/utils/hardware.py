"""What the machine computes natively, for hparams that adapt to it (`mixed_precision=auto`),
and the graph options that suit it (`graph_options`)."""
import contextlib
import functools
import os

import tensorflow as tf

# CPU flags (Linux /proc/cpuinfo) of instructions that compute bfloat16 dot products: with
# them oneDNN's bfloat16 matmuls are faster than float32 ones; without them TensorFlow
# converts bfloat16 back and forth, which is slower than float32 throughout.
_CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path="/proc/cpuinfo"):
  """The first processor's feature flags (a set of names), or an empty set where the file is
  missing or unreadable (other systems than Linux)."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.split(":", 1)[1].split())
  except OSError:
    pass
  return set()


def cpu_cores():
  """The CPU cores this process may run on (its affinity on Linux, else all of them)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def accelerator():
  """Whether TensorFlow sees a TPU or a GPU."""
  return bool(tf.config.list_logical_devices("TPU") or tf.config.list_physical_devices("GPU"))


@functools.lru_cache(maxsize=None)
def native_bfloat16():
  """Whether the accelerator (or, with none, the CPU) computes bfloat16 natively: a TPU, GPUs
  of compute capability 8.0 or newer (all of them), or a CPU with AVX512-BF16 or AMX-BF16."""
  if tf.config.list_logical_devices("TPU"):
    return True
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    for gpu in gpus:
      capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
      if not capability or tuple(capability) < (8, 0):
        return False
    return True
  if not onednn_enabled():
    return False  # bfloat16 matmuls on a CPU are fast only through oneDNN
  return any(flag in cpu_flags() for flag in _CPU_BFLOAT16_FLAGS)


def onednn_enabled():
  """Whether TensorFlow runs its CPU kernels through oneDNN (TF_ENABLE_ONEDNN_OPTS, on by
  default on x86)."""
  return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


# Grappler options graph_options may turn off, with their default.
_GRAPPLER_DEFAULTS = {"remapping": True}


def graph_options(policy):
  """Grappler options (`tf.config.optimizer.set_experimental_options`) for the training and
  evaluation graphs of a model computing in the Keras dtype policy `policy` (None: float32).

  {"remapping": False} for bfloat16 on a CPU through oneDNN; {} elsewhere. Grappler's remapper
  fuses each MatMul with its BiasAdd into one op, which TensorFlow runs as a oneDNN inner
  product, and oneDNN runs a bfloat16 inner product with its generic gemm (x64:gemm:jit), while
  it runs a plain bfloat16 MatMul with its AMX matmul (brg_matmul): in a transformer_tiny
  training step (ONEDNN_VERBOSE) the 22 forward projections took 7.2 ms fused and ~2.8 ms as
  plain MatMuls, the step's oneDNN time 20.8 ms against 15.7. Its steps were 6% faster (blocks
  of 100 steps, the two settings alternated five times in one process: mean 3.77 against
  4.00 s, fastest 3.42 against 3.74). float32 is left alone: there the fused op is the fast one.
  """
  if policy == "mixed_bfloat16" and onednn_enabled() and not accelerator():
    return {"remapping": False}
  return {}


@contextlib.contextmanager
def graph_options_scope(options):
  """Runs the body with these grappler options (from `graph_options`), then restores the
  ones before. tf.functions called inside are optimized with them (TensorFlow keeps a
  function's optimized graph per set of options)."""
  if not options:
    yield
    return
  previous = tf.config.optimizer.get_experimental_options()
  tf.config.optimizer.set_experimental_options(options)
  try:
    yield
  finally:
    tf.config.optimizer.set_experimental_options(
        {name: previous.get(name, _GRAPPLER_DEFAULTS[name]) for name in options})
