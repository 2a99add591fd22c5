"""What the machine computes natively, for hparams that adapt to it (`mixed_precision=auto`)."""
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
  if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") == "0":
    return False  # bfloat16 matmuls on a CPU are fast only through oneDNN
  return any(flag in cpu_flags() for flag in _CPU_BFLOAT16_FLAGS)
