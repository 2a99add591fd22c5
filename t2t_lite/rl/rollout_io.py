"""Rollouts on disk: one TFRecord file of `tf.train.Example`s, one Example per rollout.

Each Example holds a whole rollout (see `t2t_lite.rl.rollouts`):

    observations        int64[T * prod(observation_shape)]   the frames' observations, flat
    observation_shape   int64[...]                            one frame's shape
    actions             int64[T]
    rewards             float[T]
    dones               int64[T]                              0 or 1

Files are written under a temporary name and renamed when complete, so a file that exists is
whole. All access is through `tf.io.gfile`.
"""
import os
import uuid

import numpy as np

from t2t_lite.errors import CorruptDataError
from t2t_lite.rl.rollouts import Frame


def _example_from_rollout(rollout):
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  if not rollout:
    raise ValueError("cannot write an empty rollout")
  observations = np.stack([np.asarray(f.observation) for f in rollout])
  return generator_utils.to_example({
      "observations": observations.astype(np.int64).reshape(-1),
      "observation_shape": list(observations.shape[1:]),
      "actions": [int(f.action) for f in rollout],
      "rewards": [float(f.reward) for f in rollout],
      "dones": [int(bool(f.done)) for f in rollout],
  })


def _rollout_from_example(example, dtype=np.int64):
  feature = example.features.feature
  shape = tuple(feature["observation_shape"].int64_list.value)
  actions = list(feature["actions"].int64_list.value)
  rewards = list(feature["rewards"].float_list.value)
  dones = list(feature["dones"].int64_list.value)
  observations = np.asarray(feature["observations"].int64_list.value, dtype=dtype)
  observations = observations.reshape((len(actions),) + shape)
  return [Frame(observations[t], int(actions[t]), _as_number(rewards[t]), bool(dones[t]))
          for t in range(len(actions))]


def _as_number(x):
  return int(x) if float(x).is_integer() else float(x)


def write_rollouts(path, rollouts):
  """Writes `rollouts` (lists of `Frame`) to the TFRecord file `path`, atomically.

  Returns:
    The number of rollouts written.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  head, tail = os.path.split(path)
  if head:
    tf.io.gfile.makedirs(head)
  tmp = os.path.join(head, ".%s.incomplete-%s" % (tail, uuid.uuid4().hex[:8]))
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for rollout in rollouts:
        writer.write(_example_from_rollout(rollout).SerializeToString())
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
  return len(rollouts)


def read_rollouts(path, dtype=np.int64):
  """Reads the rollouts of one file written by `write_rollouts` (a list of lists of `Frame`).

  Raises:
    t2t_lite.errors.CorruptDataError naming the file when it is truncated or corrupt.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top
  rollouts = []
  try:
    for record in tf.data.TFRecordDataset(path):
      example = example_pb2.Example()
      example.ParseFromString(record.numpy())
      rollouts.append(_rollout_from_example(example, dtype))
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    raise CorruptDataError("rollout file %s is corrupt or truncated (after %d rollouts): %s. "
                           "Delete it and run again to collect it anew." %
                           (path, len(rollouts), e.message.splitlines()[0])) from None
  return rollouts

