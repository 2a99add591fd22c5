"""The pieces of the Trainer's loop that hold none of its state.

- `make_train_loop`: `iterations_per_loop` steps of a Task's train step under a tf.distribute
  strategy in one tf.function call.
- `summary_writer`: a tf.summary writer for one folder of an output_dir, whose failed writes
  are OutputWriteErrors.
- `log_train`: the train summaries and the one log line of a logging window.
- `stop_on_sigterm`: SIGTERM asks the loop to stop after its current step.
"""
import contextlib
import os
import signal
import threading

import tensorflow as tf
from absl import logging

from t2t_lite import output_dir as output_dir_lib
from t2t_lite.utils import format_elapsed, setup_directories


def make_train_loop(task, model, optimizer, strategy, global_step, xla_compile=False):
  """`train_loop(iterator, num_steps) -> (loss_sum, weight_sum, tokens)`: num_steps steps of
  the Task's train step under the strategy in one tf.function call, each adding 1 to
  global_step (the step itself XLA-compiled with xla_compile)."""
  # The step is traced as plain Python, never converted by autograph (as keras's own
  # fit does): Task and model code has no Python control flow on tensors (it runs on every
  # Keras backend), and converting it took 2.3 s of the 4.4 s trace of transformer_tiny's
  # step.
  @tf.autograph.experimental.do_not_convert
  def step_fn(features):
    return task.train_step(model, optimizer, features)
  if xla_compile:
    step_fn = tf.function(step_fn, jit_compile=True, autograph=False)

  @tf.function
  def train_loop(iterator, num_steps):
    loss_sum = tf.constant(0.0)
    weight_sum = tf.constant(0.0)
    tokens = tf.constant(0.0)
    for _ in tf.range(num_steps):
      l, w, t = strategy.run(step_fn, args=(next(iterator),))
      loss_sum += strategy.reduce(tf.distribute.ReduceOp.SUM, l, axis=None)
      weight_sum += strategy.reduce(tf.distribute.ReduceOp.SUM, w, axis=None)
      tokens += strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
      global_step.assign_add(1)
    return loss_sum, weight_sum, tokens

  return train_loop


@contextlib.contextmanager
def summary_writer(output_dir, name):
  """A tf.summary writer for OUTPUT_DIR/name, closed on exit; a failed write of the summaries
  is an OutputWriteError. (The folder is made on entry, not when a Trainer is made, so a
  schedule that Trainer.run rejects leaves the output_dir untouched.)"""
  path = os.path.join(output_dir, name)
  try:
    writer = tf.summary.create_file_writer(setup_directories(output_dir, [name])[name])
  except output_dir_lib.write_errors() as e:
    raise output_dir_lib.write_failed("the summaries in", path, e) from None
  try:
    yield writer
  finally:
    try:
      writer.close()
    except output_dir_lib.write_errors() as e:
      raise output_dir_lib.write_failed("the summaries in", path, e) from None


def log_train(writer, log, optimizer, step, train_steps, loss, tokens, steps, seconds,
              sec_per_step):
  """Writes the train summaries at `step` (loss, learning rate, steps/s and tokens/s over a
  window of `steps` steps and `seconds` seconds) and logs one line with `log` (the trainer's
  relative-timing function: "Timing: H:MM:SS.ffffff step ...", with the ETA at sec_per_step).
  """
  seconds = max(seconds, 1e-9)
  lr = optimizer.learning_rate
  lr = float(lr(optimizer.iterations) if callable(lr) else lr)
  with writer.as_default(step=step):
    tf.summary.scalar("loss", loss)
    tf.summary.scalar("learning_rate", lr)
    tf.summary.scalar("steps_per_sec", steps / seconds)
    tf.summary.scalar("tokens_per_sec", tokens / seconds)
  eta = format_elapsed(int(sec_per_step * max(0, train_steps - step)))
  log("step %d/%d loss %.4f lr %.3g tokens/s %.0f ETA %s" % (
      step, train_steps, loss, lr, tokens / seconds, eta))


@contextlib.contextmanager
def stop_on_sigterm(request_stop):
  """Within it, SIGTERM calls `request_stop()` (the loop saves a checkpoint after its current
  step, then stops); the previous handler is back on exit. Outside the main thread, where
  Python cannot install a handler, it does nothing."""
  previous = None
  if threading.current_thread() is threading.main_thread():
    def handler(signum, frame):  # pylint: disable=unused-argument
      logging.warning("SIGTERM: saving a checkpoint after the current step, then stopping.")
      request_stop()

    try:
      previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:
      previous = None
  try:
    yield
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
