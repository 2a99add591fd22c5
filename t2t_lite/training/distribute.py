"""Choosing a tf.distribute strategy from the flags.

`--distribution_strategy=auto` (the default) picks, in order:
  TPUStrategy                 when --use_tpu or --tpu is given,
  MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker,
  MirroredStrategy            when more than one GPU is visible (--worker_gpu limits them),
  the default strategy        otherwise (one CPU or one GPU).
"""
import json
import os

import tensorflow as tf
from absl import logging

from t2t_lite.constants import DISTRIBUTION_STRATEGIES as STRATEGIES
from t2t_lite.errors import ConfigError


def _tf_config():
  """TF_CONFIG as a dict ({} when unset); a ConfigError when it is not valid JSON."""
  try:
    config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
  except ValueError as e:
    raise ConfigError("TF_CONFIG is not valid JSON: %s" % e) from None
  return config


def _workers(config):
  cluster = config.get("cluster") or {}
  return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief():
  """False on the non-chief workers of a multi-worker run (TF_CONFIG), which share the
  chief's output_dir; True otherwise (and for a TF_CONFIG that is not valid JSON, which
  `create_strategy` reports)."""
  try:
    config = _tf_config()
  except ConfigError:
    return True
  cluster = config.get("cluster") or {}
  task = config.get("task") or {}
  kind, index = task.get("type"), task.get("index", 0)
  if not kind or _workers(config) <= 1:
    return True
  if cluster.get("chief"):
    return kind == "chief"
  return kind == "worker" and int(index or 0) == 0


def _tpu_strategy(tpu):
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise ConfigError("--use_tpu/--tpu%s: no TPU could be reached (%s). Run on a TPU VM or pass "
                      "--tpu=NAME_OR_ADDRESS." % ("=" + tpu if tpu else "",
                                                   str(e).splitlines()[0] if str(e) else
                                                   type(e).__name__)) from None
  return tf.distribute.TPUStrategy(resolver)


def create_strategy(distribution_strategy="auto", use_tpu=False, tpu=None, worker_gpu=None):
  """The tf.distribute.Strategy the flags ask for (see the module docstring)."""
  name = distribution_strategy or "auto"
  if name not in STRATEGIES:
    raise ConfigError("--distribution_strategy=%s: unknown; use one of %s."
                      % (name, ", ".join(STRATEGIES)))
  # list_physical_devices does not start the runtime: MultiWorkerMirroredStrategy must be
  # created before anything else runs.
  gpus = ["/gpu:%d" % i for i in range(len(tf.config.list_physical_devices("GPU")))]
  if worker_gpu:
    gpus = gpus[:worker_gpu]
  if name == "auto":
    if use_tpu or tpu:
      name = "tpu"
    elif _workers(_tf_config()) > 1:
      name = "multi_worker_mirrored"
    elif len(gpus) > 1:
      name = "mirrored"
    else:
      name = "default"
  elif (use_tpu or tpu) and name != "tpu":
    raise ConfigError("--use_tpu/--tpu conflict with --distribution_strategy=%s." % name)
  if name == "tpu":
    strategy = _tpu_strategy(tpu)
  elif name == "multi_worker_mirrored":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  elif name == "mirrored":
    devices = gpus or None  # None: every visible device (the CPU if there is no GPU)
    strategy = tf.distribute.MirroredStrategy(devices=devices)
  else:
    strategy = tf.distribute.get_strategy()
  logging.info("Distribution strategy: %s with %d replica(s)", type(strategy).__name__,
               strategy.num_replicas_in_sync)
  return strategy
