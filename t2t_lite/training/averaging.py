"""Checkpoint averaging: the mean of a run's last N checkpoints, as a checkpoint of its own.

    path = average_checkpoints("~/t2t/train/ende", n=8)      # ~/t2t/train/ende/avg/ckpt-STEP
    for path in follow_and_average(model_dir, 8, avg_dir, wait_secs=600):
      ...                                                    # one average per new checkpoint

Averaging the weights of the last checkpoints of a run (tensor2tensor's t2t-avg-all) usually
decodes better than any one of them. Every float variable of the model is averaged
(accumulated in float64, stored in its own dtype); the other variables of the model and the
step are taken from the newest checkpoint. The optimizer, the data position and the dropout
seeds are left out: the result is for inference.

The averaged checkpoint has the layout of a training checkpoint restricted to `model/...`,
`step` and `save_counter` (the same object graph, pruned), under the usual names
(OUTPUT_DIR/ckpt-STEP, listed in OUTPUT_DIR/checkpoint), so `Task.restore_for_inference`
and `t2t-decoder --output_dir=OUTPUT_DIR` read it like any run. The run's hparams.json and
flags.txt are copied beside it. Nothing here builds the model, so any model averages
without its problem, hparams or data.
"""
import os

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import trackable_object_graph_pb2

from t2t_lite import constants
from t2t_lite import output_dir as output_dir_lib
from t2t_lite.errors import CheckpointNotFoundError, CheckpointUnreadableError, ConfigError

AVG_SUBDIR = constants.AVERAGED_DIR  # the default output_dir: MODEL_DIR/avg
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
# The objects of a training checkpoint an averaged one keeps (the root's children).
KEPT_OBJECTS = ("model", "step", "save_counter")
AVERAGED_OBJECT = "model"
ATTRIBUTES = "/.ATTRIBUTES/"  # between an object's path and its value's name in a key


def default_output_dir(model_dir):
  return os.path.join(model_dir, AVG_SUBDIR)


def checkpoint_step(path):
  """The step in a checkpoint's name (`.../ckpt-STEP`).

  Raises:
    ConfigError: the name ends in no step number.
  """
  tail = os.path.basename(path).rsplit("-", 1)[-1]
  if not tail.isdigit():
    raise ConfigError("checkpoint %s: its name does not end in -STEP." % path)
  return int(tail)


def _check_n(n):
  if n is None or int(n) < 1:
    raise ConfigError("--n=%s: the number of checkpoints to average must be >= 1." % n)


def checkpoints_to_average(model_dir, n, min_steps=0):
  """The newest `n` checkpoints of model_dir with at least `min_steps` steps, newest first.

  Raises:
    ConfigError: n < 1, or fewer than n such checkpoints.
    CheckpointNotFoundError: model_dir has no checkpoint at all.
  """
  _check_n(n)
  paths = output_dir_lib.checkpoint_paths(model_dir)
  if not paths:
    raise CheckpointNotFoundError(
        "no checkpoint in --model_dir=%s to average: train a model there first." % model_dir)
  eligible = [p for p in paths if checkpoint_step(p) >= (min_steps or 0)]
  if len(eligible) < n:
    raise ConfigError(
        "averaging fewer checkpoints than asked: --n=%d, but %s has only %d%s (%s). Pass a "
        "smaller --n, or train longer (and keep enough with --keep_checkpoint_max)." % (
            n, model_dir, len(eligible),
            " with at least --min_steps=%d steps" % min_steps if min_steps else "",
            ", ".join(os.path.basename(p) for p in eligible) or "none"))
  return eligible[:n]


# -- reading -----------------------------------------------------------------------------------


def _read_error(path, error):
  return CheckpointUnreadableError(
      "cannot read checkpoint %s (%s). Restore a good copy, or average fewer (--n) or only "
      "later (--min_steps) checkpoints, so that it is not among them." %
      (path, " ".join(str(getattr(error, "message", None) or error).split())[:300]))


def _reader(path):
  try:
    return tf.train.load_checkpoint(path)
  except output_dir_lib.unreadable_checkpoint_errors() as e:
    raise _read_error(path, e) from None


def _get(reader, path, key):
  try:
    return reader.get_tensor(key)
  except output_dir_lib.unreadable_checkpoint_errors() as e:
    raise _read_error(path, e) from None


def _escape(local_name):
  # How tf.train.Checkpoint escapes an object's name in a checkpoint key.
  return local_name.replace(".", "..").replace("/", ".S")


def pruned_object_graph(graph_bytes, kept=KEPT_OBJECTS):
  """The TrackableObjectGraph of a checkpoint, restricted to the root's children named in
  `kept` and everything below them.

  The nodes are renumbered and each value is renamed by its shortest path in what is kept,
  as tf.train.Checkpoint names them (a training checkpoint names the model variables it
  reaches first through the optimizer `optimizer/...`).

  Returns:
    (the serialized graph, {old checkpoint key: new key}).
  """
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(graph_bytes)

  def kept_children(old):
    return [c for c in graph.nodes[old].children if old != 0 or c.local_name in kept]

  order, new_id, path = [0], {0: 0}, {0: ()}  # breadth-first, as TensorFlow names objects
  for old in order:
    for child in kept_children(old):
      if child.node_id not in new_id:
        new_id[child.node_id] = len(order)
        order.append(child.node_id)
        path[child.node_id] = path[old] + (_escape(child.local_name),)
  pruned = trackable_object_graph_pb2.TrackableObjectGraph()
  renamed = {}
  for old in order:
    node = pruned.nodes.add()
    node.CopyFrom(graph.nodes[old])
    del node.children[:]
    del node.slot_variables[:]  # the optimizer's, which is not kept
    for child in kept_children(old):
      node.children.add(node_id=new_id[child.node_id], local_name=child.local_name)
    for attribute in node.attributes:
      key = attribute.checkpoint_key  # OBJECT_PATH/.ATTRIBUTES/NAME: a new OBJECT_PATH
      if ATTRIBUTES in key:
        key = "/".join(path[old]) + key[key.index(ATTRIBUTES):]
      renamed[attribute.checkpoint_key] = key
      attribute.checkpoint_key = key
  return pruned.SerializeToString(), renamed


def average_values(paths):
  """The values of the averaged checkpoint of `paths` (newest first), by checkpoint key.

  Float variables of the model are the mean of the N checkpoints' values; every other kept
  value comes from the newest.

  Returns:
    ({key: numpy value}, {key: tf.DType}), the object graph included.

  Raises:
    CheckpointUnreadableError: a checkpoint does not read (named).
    ConfigError: the checkpoints hold different variables (not one run), or no model.
  """
  newest = _reader(paths[0])
  graph, renamed = pruned_object_graph(_get(newest, paths[0], OBJECT_GRAPH_KEY))
  shapes = newest.get_variable_to_shape_map()
  dtypes = newest.get_variable_to_dtype_map()
  renamed = {old: new for old, new in renamed.items() if old in dtypes}
  averaged = [old for old, new in renamed.items()
              if new.startswith(AVERAGED_OBJECT + "/") and dtypes[old].is_floating]
  if not averaged:
    raise ConfigError("checkpoint %s holds no float variables under %s/: it is not a "
                      "t2t_lite training checkpoint." % (paths[0], AVERAGED_OBJECT))
  sums = {k: _get(newest, paths[0], k).astype(np.float64) for k in averaged}
  for path in paths[1:]:
    reader = _reader(path)
    other_shapes = reader.get_variable_to_shape_map()
    for k in averaged:
      if other_shapes.get(k) != shapes[k]:
        raise ConfigError(
            "checkpoints %s and %s hold different variables (%s: %s vs %s): average the "
            "checkpoints of one run." % (paths[0], path, k, shapes[k], other_shapes.get(k)))
      sums[k] += _get(reader, path, k).astype(np.float64)
  values = {new: (sums[old] / len(paths)).astype(dtypes[old].as_numpy_dtype) if old in sums
           else _get(newest, paths[0], old) for old, new in renamed.items()}
  new_dtypes = {new: dtypes[old] for old, new in renamed.items()}
  values[OBJECT_GRAPH_KEY] = graph
  new_dtypes[OBJECT_GRAPH_KEY] = tf.string
  return values, new_dtypes


# -- writing -----------------------------------------------------------------------------------


def write_checkpoint(values, dtypes, prefix):
  """Writes {key: value} as the checkpoint `prefix` (.index + one data file), the way
  TensorFlow does: into PREFIX_temp/, merged into place last.

  Raises:
    OutputWriteError: it could not be written (nothing half-written is left).
  """
  gfile = tf.io.gfile
  temp_dir = prefix + "_temp"
  keys = sorted(values)
  try:
    gfile.makedirs(temp_dir)
    part = os.path.join(temp_dir, "part-00000-of-00001")
    tf.raw_ops.SaveV2(prefix=part, tensor_names=keys, shape_and_slices=[""] * len(keys),
                      tensors=[tf.constant(values[k], dtype=dtypes[k]) for k in keys])
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=[part], destination_prefix=prefix,
                                  delete_old_dirs=True)
  except output_dir_lib.write_errors() as e:
    _remove_quietly(gfile.glob(prefix + ".*"))
    raise output_dir_lib.write_failed("averaged checkpoint", prefix, e) from None
  finally:
    _remove_quietly([temp_dir])


def _remove_quietly(paths):
  for path in paths:
    try:
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
    except output_dir_lib.write_errors():
      pass


def _makedirs(path):
  try:
    tf.io.gfile.makedirs(path)
  except output_dir_lib.write_errors() as e:
    raise output_dir_lib.write_failed("the directory", path, e) from None


def _add_to_state(output_dir, path, max_to_keep):
  """Lists `path` as output_dir's latest checkpoint; deletes the oldest beyond max_to_keep."""
  # Newest written first, as TensorFlow's CheckpointManager keeps them.
  paths = [path] + [p for p in output_dir_lib.checkpoint_paths(output_dir) if p != path]
  if max_to_keep:
    paths, dropped = paths[:max_to_keep], paths[max_to_keep:]
  else:
    dropped = []
  # The state file TensorFlow's CheckpointManager writes (names relative to output_dir).
  names = [os.path.basename(p) for p in paths]
  text = 'model_checkpoint_path: "%s"\n' % names[0] + "".join(
      'all_model_checkpoint_paths: "%s"\n' % name for name in reversed(names))
  output_dir_lib.write_text_atomically(os.path.join(output_dir, "checkpoint"), text,
                                       "the checkpoint list")
  for old in dropped:
    for name in output_dir_lib.checkpoint_files(old):
      tf.io.gfile.remove(name)


def copy_run_files(model_dir, output_dir):
  """Copies MODEL_DIR/hparams.json, vocab.json and flags.txt into output_dir, so that it is a run dir
  t2t-decoder reads alone.

  Raises:
    ConfigError: output_dir already holds the hparams of another run.
  """
  saved = output_dir_lib.read_saved_hparams(model_dir)
  if saved is None:
    logging.warning("%s has no %s: pass --hparams_set to t2t-decoder for %s.", model_dir,
                    constants.HPARAMS_FILENAME, output_dir)
  else:
    existing = output_dir_lib.read_saved_hparams(output_dir)
    diffs = (output_dir_lib.hparams_differences(existing, saved)
             if existing is not None else None)
    if diffs:
      raise ConfigError(
          "--output_dir=%s holds the averages of another run: its %s differs from the one in "
          "%s (%s). Use another --output_dir." % (
              output_dir, constants.HPARAMS_FILENAME, model_dir, "; ".join(diffs[:3])))
    if existing is None:
      output_dir_lib.write_text_atomically(output_dir_lib.hparams_path(output_dir),
                                           saved.to_json(indent=2, sort_keys=True) + "\n",
                                           "the hparams")
  output_dir_lib.copy_vocab_fingerprint(model_dir, output_dir)
  flags_file = os.path.join(model_dir, constants.FLAGS_FILENAME)
  if tf.io.gfile.exists(flags_file):
    with tf.io.gfile.GFile(flags_file, "r") as f:
      text = f.read()
    output_dir_lib.write_text_atomically(
        os.path.join(output_dir, constants.FLAGS_FILENAME), text, "the flags")


def _check_dirs(model_dir, output_dir):
  if not model_dir:
    raise ConfigError("--model_dir is required: the run whose checkpoints to average.")
  same = os.path.abspath(model_dir) == os.path.abspath(output_dir)
  if same:
    raise ConfigError("--output_dir=%s is --model_dir: the averages go in a directory of "
                      "their own (default MODEL_DIR/%s)." % (output_dir, AVG_SUBDIR))


def average_paths(paths, output_dir, max_to_keep=None):
  """Averages the checkpoints `paths` (newest first) into OUTPUT_DIR/ckpt-STEP (the newest's
  step) and lists it in output_dir's checkpoint state; returns its path."""
  values, dtypes = average_values(paths)
  _makedirs(output_dir)
  prefix = os.path.join(output_dir, "%s-%d" % (constants.CHECKPOINT_NAME,
                                               checkpoint_step(paths[0])))
  write_checkpoint(values, dtypes, prefix)
  _add_to_state(output_dir, prefix, max_to_keep)
  logging.info("Averaged %d checkpoints (%s) into %s", len(paths),
               ", ".join(os.path.basename(p) for p in paths), prefix)
  return prefix


def average_checkpoints(model_dir, n, output_dir=None, min_steps=0, max_to_keep=None):
  """Averages the last `n` checkpoints of the run in model_dir into a new checkpoint.

  Args:
    model_dir: the training run (its output_dir).
    n: how many of its newest checkpoints to average.
    output_dir: where to write the averaged checkpoint (default MODEL_DIR/avg); it gets the
      run's hparams.json and flags.txt too.
    min_steps: leave out checkpoints with fewer steps.
    max_to_keep: averaged checkpoints kept in output_dir (None: all).

  Returns:
    The averaged checkpoint's path, OUTPUT_DIR/ckpt-STEP (STEP: the newest one's).

  Raises:
    CheckpointNotFoundError: model_dir has no checkpoint.
    ConfigError: fewer than n checkpoints, n < 1, output_dir is model_dir or holds the
      averages of another run, the checkpoints are of different models.
    CheckpointUnreadableError: a checkpoint does not read (named).
    OutputWriteError: the averaged checkpoint could not be written.
  """
  output_dir = output_dir or default_output_dir(model_dir)
  _check_dirs(model_dir, output_dir)
  paths = checkpoints_to_average(model_dir, n, min_steps)
  _makedirs(output_dir)
  copy_run_files(model_dir, output_dir)
  return average_paths(paths, output_dir, max_to_keep)


def follow_and_average(model_dir, n, output_dir=None, wait_secs=600, min_steps=0,
                       max_to_keep=None, poll_secs=1):
  """Averages the last `n` checkpoints now and again each time a new one appears in
  model_dir (a running training), until none appears for `wait_secs`; yields each path.

  Until model_dir has n checkpoints it waits. A checkpoint the trainer deletes while it is
  read (its --keep_checkpoint_max) is skipped until the next one.

  Raises:
    ConfigError: no average was written before the wait ran out (fewer than n checkpoints).
    The errors of `average_checkpoints` otherwise.
  """
  output_dir = output_dir or default_output_dir(model_dir)
  _check_dirs(model_dir, output_dir)
  _check_n(n)
  done_step = None
  for _ in tf.train.checkpoints_iterator(model_dir, min_interval_secs=poll_secs,
                                         timeout=wait_secs):
    try:
      paths = checkpoints_to_average(model_dir, n, min_steps)
    except (ConfigError, CheckpointNotFoundError) as e:
      logging.info("Waiting for more checkpoints: %s", e)
      continue
    if checkpoint_step(paths[0]) == done_step:
      continue
    _makedirs(output_dir)
    copy_run_files(model_dir, output_dir)
    try:
      path = average_paths(paths, output_dir, max_to_keep)
    except CheckpointUnreadableError:
      if all(tf.io.gfile.exists(p + ".index") for p in paths):
        raise
      logging.warning("A checkpoint was deleted while it was averaged; waiting for the next.")
      continue
    done_step = checkpoint_step(paths[0])
    yield path
  if done_step is None:
    checkpoints_to_average(model_dir, n, min_steps)  # raises: fewer than n
    raise ConfigError("no new checkpoint appeared in %s within %d seconds." %
                      (model_dir, wait_secs))


__all__ = ["AVG_SUBDIR", "average_checkpoints", "average_paths", "average_values",
           "checkpoint_step", "checkpoints_to_average", "copy_run_files",
           "default_output_dir", "follow_and_average", "pruned_object_graph",
           "write_checkpoint"]
