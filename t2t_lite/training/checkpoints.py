"""The training checkpoint of a run: model, optimizer, step, dropout state and data position.

    ckpt = TrainingCheckpoint(output_dir, model, optimizer, step, data_iterator)
    ckpt.restore_newest()     # the newest complete checkpoint, or None on a fresh output_dir
    ckpt.save()               # OUTPUT_DIR/ckpt-STEP

One `tf.train.Checkpoint` under a `tf.train.CheckpointManager` in output_dir. A resumed run
continues with the same weights, optimizer state, step, dropout random state and position in
the data (where the strategy's iterators can be saved).
"""
import os

import tensorflow as tf
from absl import logging

from t2t_lite import constants
from t2t_lite import output_dir as output_dir_lib


class TrainingCheckpoint:
  """Saves and restores one training run's state in output_dir.

  Args:
    output_dir: where the checkpoints are (OUTPUT_DIR/ckpt-STEP.*).
    model: the keras.Model.
    optimizer: its optimizer (built, so its variables exist), or None for evaluation.
    step: the global step tf.Variable (the checkpoint number).
    data_iterator: the training data iterator, or None; saved when TensorFlow can save it.
    max_to_keep: checkpoints kept by the manager.
  """

  def __init__(self, output_dir, model, optimizer, step, data_iterator=None,
               max_to_keep=constants.DEFAULT_KEEP_CHECKPOINT_MAX):
    objects = dict(model=model, step=step)
    if optimizer is not None:
      objects["optimizer"] = optimizer
    # Keras keeps the random state of dropout in SeedGenerator variables that are not TF
    # trackables of the model: save them too, so a resumed run draws the same dropout masks.
    seed_states = [v.value for v in model.variables if v.path.endswith("seed_generator_state")]
    if seed_states:
      objects["seed_states"] = seed_states
    if data_iterator is not None:
      if isinstance(data_iterator, tf.__internal__.tracking.Trackable):
        objects["data"] = data_iterator
      else:
        # The iterators of tf.distribute's distributed datasets (Mirrored, TPU) cannot be
        # saved: a resumed run continues with the weights and step but reads the data afresh.
        logging.warning("The data position is not checkpointed under this strategy; a "
                        "resumed run restarts the input pipeline.")
    self.output_dir = output_dir
    self.step = step
    self.max_to_keep = max_to_keep
    self.partial = optimizer is None or data_iterator is None
    self.checkpoint = tf.train.Checkpoint(**objects)
    self.manager = self._new_manager()

  def _new_manager(self):
    # The manager reads output_dir's checkpoint state file when it is made.
    return tf.train.CheckpointManager(
        self.checkpoint, self.output_dir, max_to_keep=self.max_to_keep,
        checkpoint_name=constants.CHECKPOINT_NAME, step_counter=self.step)

  @property
  def latest(self):
    """The newest complete checkpoint's path, or None."""
    return self.manager.latest_checkpoint

  def restore(self, path):
    """Restores `path` (only what this object holds, for an evaluation-only one)."""
    status = self.checkpoint.restore(path)
    if self.partial:
      status.expect_partial()
    logging.info("Restored %s (step %d)", path, int(self.step.numpy()))
    return path

  def restore_newest(self, move_aside=True):
    """Restores the newest checkpoint that restores; returns its path, or None when there is
    no checkpoint.

    A checkpoint that does not restore (damaged, truncated, a shard missing) is moved aside
    (renamed, with a warning) when `move_aside` (the training run, which owns the output_dir),
    else skipped with a warning (an evaluator); the next older one is tried.

    Raises:
      CheckpointUnreadableError: there are checkpoints and none restores.
    """
    if move_aside:
      # A run killed while saving leaves TensorFlow's ckpt-N_temp folder behind; it is never
      # a complete checkpoint (the manager only lists finished ones), so clear it away.
      pattern = os.path.join(self.output_dir, "%s-*_temp" % constants.CHECKPOINT_NAME)
      for leftover in tf.io.gfile.glob(pattern):
        tf.io.gfile.rmtree(leftover)
    try:
      return output_dir_lib.restore_newest_good(self.output_dir, self.restore, move_aside)
    finally:
      if move_aside:
        self.manager = self._new_manager()

  def save(self):
    """Saves a checkpoint numbered with the current step; returns its path.

    Raises:
      OutputWriteError: the checkpoint could not be written (a full or read-only disk); the
        complete checkpoints already there are kept, and what was half-written is removed.
    """
    kept = self.latest
    try:
      path = self.manager.save(checkpoint_number=self.step)
    except output_dir_lib.write_errors() as e:
      name = os.path.join(self.output_dir, "%s-%d" % (constants.CHECKPOINT_NAME,
                                                      int(self.step.numpy())))
      complete = set(self.manager.checkpoints)
      half_written = [] if name in complete else tf.io.gfile.glob(name + ".*")
      for leftover in tf.io.gfile.glob(name + "_temp") + half_written:
        try:  # TensorFlow writes under NAME_temp and merges into NAME.index/.data last
          if tf.io.gfile.isdir(leftover):
            tf.io.gfile.rmtree(leftover)
          else:
            tf.io.gfile.remove(leftover)
        except output_dir_lib.write_errors():
          pass
      raise output_dir_lib.write_failed(
          "checkpoint", name, e,
          "the newest complete checkpoint, %s, is kept and a rerun continues from it" %
          os.path.basename(kept) if kept else "no earlier checkpoint exists") from None
    logging.info("Saved %s", path)
    return path

  def follow(self, timeout):
    """Restores each new checkpoint as it appears and yields its path (continuous
    evaluation); a checkpoint that does not restore is skipped with a warning."""
    for path in tf.train.checkpoints_iterator(self.output_dir, min_interval_secs=1,
                                              timeout=timeout):
      try:
        output_dir_lib.verify_checkpoint(path)
        self.restore(path)
      except output_dir_lib.unreadable_checkpoint_errors() as e:
        logging.warning("Skipping checkpoint %s: it does not restore (%s).", path, e)
        print("warning: skipping checkpoint %s: it does not restore (%s)" %
              (path, " ".join(str(e).split())[:300]), flush=True)
        continue
      yield path
