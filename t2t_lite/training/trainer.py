"""The supervised training loop behind `t2t-trainer` and `train_supervised`.

    from t2t_lite.training import train_supervised
    results = train_supervised("algorithmic_reverse_binary40", "transformer",
                               registry.hparams("transformer_tiny"), data_dir, output_dir,
                               train_steps=2000, eval_steps=100)
    results["accuracy"]

One `Trainer` holds a model, its optimizer, the global step and the training data iterator,
all in one `tf.train.Checkpoint` under a `tf.train.CheckpointManager` in output_dir, so a run on
an output_dir that has checkpoints continues from the newest one: same step, same weights, same
position in the data. The train step runs `iterations_per_loop` steps per `tf.function` call
(optionally XLA-compiled), inside whatever tf.distribute strategy is in use; the loss of each
replica is divided by the token count of the global batch, so any number of replicas computes
the same update.
"""
import contextlib
import math
import os
import signal
import threading
import time

import keras
import tensorflow as tf
from absl import logging

from t2t_lite import registry
from t2t_lite.errors import ConfigError, CorruptDataError, T2TUserError
from t2t_lite.models import losses
from t2t_lite.training import metrics as metrics_lib
from t2t_lite.training import optimizers
from t2t_lite.utils import (format_elapsed, make_relative_timing_fn, setup_directories,
                            write_json_atomically)

SCHEDULES = ("train", "evaluate", "train_and_evaluate", "continuous_train_and_eval",
             "continuous_eval")
TRAIN, EVAL = "train", "eval"  # t2t_lite.data.ModeKeys values


class TrainingDivergedError(T2TUserError, FloatingPointError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""


def check_schedule(schedule):
  if schedule not in SCHEDULES:
    raise ConfigError("--schedule=%s: unknown schedule; use one of %s."
                      % (schedule, ", ".join(SCHEDULES)))


def _hp(hparams, name, default):
  return getattr(hparams, name) if name in hparams else default


class Trainer:
  """Trains and evaluates one model on one problem; see the module docstring.

  Args:
    problem: a registered problem name or a Problem instance.
    model_name: a registered model name.
    hparams: the HParams (an hparams set with overrides applied).
    data_dir: where the problem's TFRecords are.
    output_dir: checkpoints, summaries (train/, eval/), eval_results.json, export/.
    train_steps: the step to train to (also sets cosine decay's length).
    strategy: a tf.distribute.Strategy; the default strategy when None.
    save_checkpoints_steps: save every this many steps (and always at the end).
    keep_checkpoint_max: checkpoints kept by the CheckpointManager.
    log_step_count_steps: a log line (and train summaries) every this many steps.
    random_seed: seeds Python, NumPy, TensorFlow and the data order when not None.
    continuous_eval_timeout: seconds `continuous_eval` waits for a new checkpoint.
  """

  def __init__(self, problem, model_name, hparams, data_dir, output_dir, train_steps,
               strategy=None, save_checkpoints_steps=1000, keep_checkpoint_max=20,
               log_step_count_steps=100, random_seed=None, continuous_eval_timeout=600):
    if train_steps is None or int(train_steps) < 0:
      raise ConfigError("--train_steps=%s: must be a number >= 0." % train_steps)
    self.problem = registry.problem(problem) if isinstance(problem, str) else problem
    self.model_name = model_name
    self.hparams = hparams
    self.data_dir = data_dir
    self.output_dir = output_dir
    self.train_steps = int(train_steps)
    self.strategy = strategy or tf.distribute.get_strategy()
    self.save_checkpoints_steps = int(save_checkpoints_steps or 0)
    self.keep_checkpoint_max = keep_checkpoint_max
    self.log_step_count_steps = max(1, int(log_step_count_steps or 100))
    self.random_seed = random_seed
    self.continuous_eval_timeout = continuous_eval_timeout
    self._log_time = make_relative_timing_fn()
    self._stop_requested = False
    if random_seed is not None:
      keras.utils.set_random_seed(int(random_seed))

    self.dirs = setup_directories(output_dir, ["train", "eval"])
    try:
      # Subword vocabularies are read from data_dir to know their size.
      self.problem_hparams = self.problem.get_hparams(hparams, data_dir=data_dir)
    except TypeError:  # a duck-typed problem whose get_hparams takes only the hparams
      self.problem_hparams = self.problem.get_hparams(hparams)
    self.sequence_targets = self.problem_hparams.modality["targets"] != "class_label"
    self.device_metrics, self.host_metrics = metrics_lib.metric_names_for(
        self.problem.eval_metrics(), self.sequence_targets)

    with self.strategy.scope():
      self.model = self._build_model()
      self.optimizer = optimizers.create_optimizer(hparams, self.train_steps)
      self.optimizer.build(self.model.trainable_variables)
      self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    self._train_iterator = None
    self._checkpoint = None
    self._manager = None
    self._train_fn = None
    self._eval_fn = None

  @contextlib.contextmanager
  def _reading_errors(self):
    """tf.data's DataLossError (a corrupt or truncated shard) as a CorruptDataError that
    names the file (the Problem finds it), not a bare error mid-training."""
    reading_errors = getattr(self.problem, "reading_errors", None)
    if reading_errors is not None:
      with reading_errors(self.data_dir):
        yield
      return
    try:
      yield
    except tf.errors.DataLossError as e:
      raise CorruptDataError("%s: a data file is corrupt or truncated (%s). Regenerate it "
                             "with t2t-datagen --overwrite." %
                             (self.data_dir, e.message.splitlines()[0])) from None

  # ---------------------------------------------------------------- building
  def _dataset_fn(self, mode, shuffle=None):
    def fn(input_context):
      return self.problem.dataset(mode, self.data_dir, self.hparams, shuffle=shuffle,
                                  seed=self.random_seed, input_context=input_context)
    return fn

  def _build_model(self):
    policy = _hp(self.hparams, "mixed_precision", "")
    previous = keras.config.dtype_policy()
    if policy:
      keras.config.set_dtype_policy(policy)
    try:
      model = registry.model(self.model_name)(self.hparams, self.problem_hparams)
      # Create the variables now (inside the strategy's scope) from the dataset's spec, so the
      # optimizer can be built and a checkpoint restored before the first step.
      spec = self.problem.dataset(TRAIN, self.data_dir, self.hparams).element_spec
      dummy = {}
      for key, s in spec.items():
        shape = [1] + [d if d is not None else 4 for d in s.shape[1:]]
        dummy[key] = tf.ones(shape, s.dtype)
      model(dummy, training=False)
    finally:
      keras.config.set_dtype_policy(previous)
    return model

  def _ensure_train_iterator(self):
    if self._train_iterator is None:
      dataset = self.strategy.distribute_datasets_from_function(self._dataset_fn(TRAIN))
      self._train_iterator = iter(dataset)

  def _ensure_checkpoint(self, with_data):
    if self._checkpoint is not None:
      return
    objects = dict(model=self.model, optimizer=self.optimizer, step=self.global_step)
    # Keras keeps the random state of dropout in SeedGenerator variables that are not TF
    # trackables of the model: save them too, so a resumed run draws the same dropout masks.
    seed_states = [v.value for v in self.model.variables
                   if v.path.endswith("seed_generator_state")]
    if seed_states:
      objects["seed_states"] = seed_states
    if with_data:
      self._ensure_train_iterator()
      if isinstance(self._train_iterator, tf.__internal__.tracking.Trackable):
        objects["data"] = self._train_iterator
      else:
        # The iterators of tf.distribute's distributed datasets (Mirrored, TPU) cannot be
        # saved: a resumed run continues with the weights and step but reads the data afresh.
        logging.warning("The data position is not checkpointed under %s; a resumed run "
                        "restarts the input pipeline.", type(self.strategy).__name__)
    self._checkpoint = tf.train.Checkpoint(**objects)
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, self.output_dir, max_to_keep=self.keep_checkpoint_max,
        checkpoint_name="ckpt", step_counter=self.global_step)

  def restore(self, with_data=True):
    """Restores the newest checkpoint in output_dir, if any; returns its path or None."""
    self._ensure_checkpoint(with_data)
    # A run killed while saving leaves TensorFlow's ckpt-N_temp folder behind; it is never a
    # complete checkpoint (the manager only lists finished ones), so clear it away.
    for leftover in tf.io.gfile.glob(os.path.join(self.output_dir, "ckpt-*_temp")):
      tf.io.gfile.rmtree(leftover)
    path = self._manager.latest_checkpoint
    if path:
      status = self._checkpoint.restore(path)
      if not with_data:
        status.expect_partial()
      logging.info("Restored %s (step %d)", path, int(self.global_step.numpy()))
    return path

  def save(self):
    self._ensure_checkpoint(True)
    path = self._manager.save(checkpoint_number=self.global_step)
    logging.info("Saved %s", path)
    return path

  # ---------------------------------------------------------------- training
  def _replica_step(self, features):
    ctx = tf.distribute.get_replica_context()
    with tf.GradientTape() as tape:
      logits = self.model(features, training=True)
      loss_sum, weight_sum = losses.model_loss(logits, features, self.problem_hparams,
                                               self.hparams)
      global_weight = ctx.all_reduce(tf.distribute.ReduceOp.SUM, weight_sum)
      loss = loss_sum / tf.maximum(global_weight, 1.0)
      if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
        loss = self.optimizer.scale_loss(loss)
    variables = self.model.trainable_variables
    grads = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return loss_sum, weight_sum, self._count_tokens(features)

  @staticmethod
  def _count_tokens(features):
    total = tf.constant(0.0)
    for key in ("inputs", "targets"):
      if key in features:
        x = features[key]
        if x.dtype.is_integer and x.shape.rank >= 2:
          total += tf.reduce_sum(tf.cast(tf.not_equal(x, 0), tf.float32))
        else:
          total += tf.cast(tf.shape(x)[0], tf.float32)
    return total

  def _make_train_fn(self):
    step_fn = self._replica_step
    if _hp(self.hparams, "xla_compile", False):
      step_fn = tf.function(step_fn, jit_compile=True)
    strategy = self.strategy

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
        self.global_step.assign_add(1)
      return loss_sum, weight_sum, tokens

    return train_loop

  def _install_sigterm(self):
    if threading.current_thread() is not threading.main_thread():
      return None

    def handler(signum, frame):  # pylint: disable=unused-argument
      logging.warning("SIGTERM: saving a checkpoint after the current step, then stopping.")
      self._stop_requested = True

    try:
      return signal.signal(signal.SIGTERM, handler)
    except ValueError:
      return None

  def train(self, train_steps=None, eval_every=None, eval_steps=100):
    """Trains to `train_steps`, evaluating every `eval_every` steps if given.

    Returns the last evaluation's results (a dict) or {} if none ran.
    """
    train_steps = self.train_steps if train_steps is None else int(train_steps)
    self.restore(with_data=True)
    if self._train_fn is None:
      self._train_fn = self._make_train_fn()
    per_loop = max(1, int(_hp(self.hparams, "iterations_per_loop", 10)))
    writer = tf.summary.create_file_writer(self.dirs["train"])
    step = int(self.global_step.numpy())
    start_step, start_time = step, time.time()
    window_loss = window_weight = window_tokens = 0.0
    window_start, window_step = time.time(), step
    results = {}
    last_saved = step
    previous_handler = self._install_sigterm()
    try:
      while step < train_steps and not self._stop_requested:
        n = min(per_loop, train_steps - step)
        for every in (self.save_checkpoints_steps, eval_every, self.log_step_count_steps):
          if every:
            n = min(n, every - step % every)
        with self._reading_errors():
          loss_sum, weight_sum, tokens = self._train_fn(self._train_iterator,
                                                        tf.constant(n, tf.int64))
        loss_sum, weight_sum = float(loss_sum), float(weight_sum)
        step += n
        if not math.isfinite(loss_sum):
          raise TrainingDivergedError(
              "the loss became %s at step %d; the last good checkpoint (%s) is kept. Lower "
              "learning_rate_constant, set clip_grad_norm, or check the data." %
              (loss_sum, step, self._manager.latest_checkpoint or "none yet"))
        window_loss += loss_sum
        window_weight += weight_sum
        window_tokens += float(tokens)
        if step % self.log_step_count_steps == 0 or step >= train_steps:
          self._log_train(writer, step, train_steps, window_loss / max(window_weight, 1.0),
                          window_tokens, step - window_step, time.time() - window_start,
                          (time.time() - start_time) / max(1, step - start_step))
          window_loss = window_weight = window_tokens = 0.0
          window_start, window_step = time.time(), step
        if self.save_checkpoints_steps and step % self.save_checkpoints_steps == 0:
          self.save()
          last_saved = step
        if eval_every and step % eval_every == 0 and step < train_steps:
          results = self.evaluate(eval_steps)
      if step != last_saved or self._manager.latest_checkpoint is None:
        self.save()
    finally:
      writer.close()
      if previous_handler is not None:
        signal.signal(signal.SIGTERM, previous_handler)
    return results

  def _log_train(self, writer, step, train_steps, loss, tokens, steps, seconds, sec_per_step):
    seconds = max(seconds, 1e-9)
    lr = self.optimizer.learning_rate
    lr = float(lr(self.optimizer.iterations) if callable(lr) else lr)
    with writer.as_default(step=step):
      tf.summary.scalar("loss", loss)
      tf.summary.scalar("learning_rate", lr)
      tf.summary.scalar("steps_per_sec", steps / seconds)
      tf.summary.scalar("tokens_per_sec", tokens / seconds)
    eta = format_elapsed(int(sec_per_step * max(0, train_steps - step)))
    # One line, logged by the relative-timing function: "Timing: H:MM:SS.ffffff step ...".
    self._log_time("step %d/%d loss %.4f lr %.3g tokens/s %.0f ETA %s" % (
        step, train_steps, loss, lr, tokens / seconds, eta))

  @property
  def stopped_by_signal(self):
    return self._stop_requested

  # ---------------------------------------------------------------- evaluation
  def _make_eval_fn(self):
    strategy = self.strategy
    want_predictions = bool(self.host_metrics)

    def replica_eval(features):
      logits = self.model(features, training=False)
      sums = metrics_lib.batch_metric_sums(logits, features["targets"], self.device_metrics)
      loss_sum, weight_sum = losses.model_loss(logits, features, self.problem_hparams,
                                               self.hparams)
      sums["loss"] = (loss_sum, weight_sum)
      extra = {}
      if want_predictions:
        extra = {"predictions": tf.argmax(logits, -1, output_type=tf.int32),
                 "targets": tf.cast(features["targets"], tf.int32)}
      return sums, extra

    @tf.function(reduce_retracing=True)
    def eval_step(features):
      sums, extra = strategy.run(replica_eval, args=(features,))
      sums = tf.nest.map_structure(
          lambda x: strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None), sums)
      return sums, extra

    return eval_step

  def evaluate(self, eval_steps=100):
    """Evaluates the current weights on the eval split.

    Args:
      eval_steps: batches per worker; -1 (or None) evaluates the whole split.

    Returns:
      {metric: value, "loss": ..., "global_step": ...}; also written to summaries (eval/) and
      output_dir/eval_results.json.
    """
    if self._eval_fn is None:
      self._eval_fn = self._make_eval_fn()
    take = int(eval_steps) if eval_steps not in (None, -1) else -1

    def dataset_fn(input_context):
      ds = self._dataset_fn(EVAL, shuffle=False)(input_context)
      if take < 0:
        return ds
      # eval_steps counts steps of the global batch: each pipeline feeds all of its worker's
      # replicas, one per-replica batch each per step.
      per_step = max(1, input_context.num_replicas_in_sync // input_context.num_input_pipelines)
      return ds.take(take * per_step)

    dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
    totals = {}
    bleu = metrics_lib.BleuAccumulator() if "approx_bleu_score" in self.host_metrics else None
    batches = 0
    with self._reading_errors():
      for features in dataset:
        sums, extra = self._eval_fn(features)
        for name, (num, den) in sums.items():
          n0, d0 = totals.get(name, (0.0, 0.0))
          totals[name] = (n0 + float(num), d0 + float(den))
        if bleu is not None:
          for p, t in zip(self.strategy.experimental_local_results(extra["predictions"]),
                          self.strategy.experimental_local_results(extra["targets"])):
            bleu.add_batch(p.numpy(), t.numpy())
        batches += 1
    step = int(self.global_step.numpy())
    results = {name: num / den if den else 0.0 for name, (num, den) in totals.items()}
    if bleu is not None:
      results["approx_bleu_score"] = bleu.result()
    results["global_step"] = step
    writer = tf.summary.create_file_writer(self.dirs["eval"])
    with writer.as_default(step=step):
      for name, value in results.items():
        if name != "global_step":
          tf.summary.scalar(name, value)
    writer.close()
    write_json_atomically(os.path.join(self.output_dir, "eval_results.json"), results)
    self._log_time("eval at step %d over %d batches: %s" % (
        step, batches, " ".join("%s=%.4f" % (k, v) for k, v in sorted(results.items())
                                if k != "global_step")))
    return results

  def continuous_eval(self, eval_steps=100):
    """Evaluates each new checkpoint in output_dir until one reaches train_steps."""
    results = {}
    self._ensure_checkpoint(with_data=False)
    for path in tf.train.checkpoints_iterator(self.output_dir, min_interval_secs=1,
                                              timeout=self.continuous_eval_timeout):
      self._checkpoint.restore(path).expect_partial()
      results = self.evaluate(eval_steps)
      if int(self.global_step.numpy()) >= self.train_steps:
        break
    return results

  # ---------------------------------------------------------------- export
  def export_saved_model(self, export_dir=None):
    """Writes a SavedModel whose `serving_default` maps the feature dict to logits."""
    export_dir = export_dir or os.path.join(self.output_dir, "export")
    spec = self.problem.dataset(EVAL, self.data_dir, self.hparams).element_spec
    signature = {k: tf.TensorSpec([None] * len(s.shape), s.dtype, name=k)
                 for k, s in spec.items()}
    archive = keras.export.ExportArchive()
    archive.track(self.model)
    archive.add_endpoint("serve", lambda features: self.model(features, training=False),
                         input_signature=[signature])
    tmp = export_dir + ".tmp-%d" % os.getpid()
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
    archive.write_out(tmp, verbose=False)
    if tf.io.gfile.exists(export_dir):
      tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)
    logging.info("Exported a SavedModel to %s", export_dir)
    return export_dir

  # ---------------------------------------------------------------- schedules
  def run(self, schedule="continuous_train_and_eval", eval_steps=100,
          local_eval_frequency=None):
    check_schedule(schedule)
    if schedule == "train":
      self.train()
      return {}
    if schedule == "evaluate":
      if self.restore(with_data=False) is None:
        raise ConfigError("--schedule=evaluate: no checkpoint in %s to evaluate; train first."
                          % self.output_dir)
      return self.evaluate(eval_steps)
    if schedule == "continuous_eval":
      return self.continuous_eval(eval_steps)
    results = self.train(eval_every=local_eval_frequency, eval_steps=eval_steps)
    if schedule == "continuous_train_and_eval" and not self._stop_requested:
      results = self.evaluate(eval_steps)
    return results


def train_supervised(problem, model_name, hparams, data_dir, output_dir, train_steps,
                     eval_steps, local_eval_frequency=None,
                     schedule="continuous_train_and_eval", **trainer_kwargs):
  """Trains `model_name` on `problem` (tensor2tensor's model-based trainer's signature).

  Args:
    problem: a registered problem name or a Problem instance.
    model_name: a registered model name.
    hparams: an HParams.
    data_dir: the problem's data.
    output_dir: checkpoints and summaries; an output_dir with checkpoints is resumed.
    train_steps: the global step to train to.
    eval_steps: batches per evaluation (-1: the whole eval split).
    local_eval_frequency: evaluate every this many steps (train_and_evaluate schedules).
    schedule: one of SCHEDULES.
    **trainer_kwargs: passed to `Trainer` (strategy, save_checkpoints_steps, ...).

  Returns:
    The last evaluation's metrics ({} for the "train" schedule).
  """
  check_schedule(schedule)
  trainer = Trainer(problem, model_name, hparams, data_dir, output_dir, train_steps,
                    **trainer_kwargs)
  return trainer.run(schedule, eval_steps=eval_steps, local_eval_frequency=local_eval_frequency)
