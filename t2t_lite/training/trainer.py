"""The supervised training loop behind `t2t-trainer` and `train_supervised`.

    from t2t_lite.training import train_supervised
    results = train_supervised("algorithmic_reverse_binary40", "transformer",
                               registry.hparams("transformer_tiny"), data_dir, output_dir,
                               train_steps=2000, eval_steps=100)
    results["accuracy"]

A `Trainer` drives a `t2t_lite.task.Task` (which owns the model, the datasets, the loss, the
metrics and one replica's steps): it holds the built model, its optimizer, the global step and
the training data iterator, all in one checkpoint (`training/checkpoints.py`) in output_dir, so
a run on an output_dir that has checkpoints continues from the newest one: same step, same
weights, same position in the data. It runs `iterations_per_loop` train steps per
`tf.function` call (the step optionally XLA-compiled; `training/train_loop.py`), inside
whatever tf.distribute strategy is in use; the Task's step divides each replica's loss by the
token count of the global batch, so any number of replicas computes the same update. Summaries
go to output_dir/train and output_dir/eval, the latest evaluation to
output_dir/eval_results.json.
"""
import math
import os
import time

import keras
import tensorflow as tf
from absl import logging

from t2t_lite import common_hparams
from t2t_lite import constants
from t2t_lite import output_dir as output_dir_lib
from t2t_lite.constants import (DEFAULT_EVAL_STEPS, DEFAULT_KEEP_CHECKPOINT_MAX,
                                DEFAULT_LOCAL_EVAL_FREQUENCY, DEFAULT_LOG_STEP_COUNT_STEPS,
                                DEFAULT_SCHEDULE, SCHEDULES, TRAINING_SCHEDULES, ModeKeys)
from t2t_lite.errors import ConfigError, T2TUserError
from t2t_lite.task import Task
from t2t_lite.training import averaging
from t2t_lite.training import evaluation
from t2t_lite.training import optimizers
from t2t_lite.training import train_loop
from t2t_lite.training.checkpoints import TrainingCheckpoint
from t2t_lite.utils import hardware, make_relative_timing_fn


class TrainingDivergedError(T2TUserError, FloatingPointError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""


def check_schedule(schedule):
  """A ConfigError for a schedule `Trainer.run` does not know."""
  if schedule not in SCHEDULES:
    raise ConfigError("--schedule=%s: unknown schedule; use one of %s."
                      % (schedule, ", ".join(SCHEDULES)))


def check_train_steps(train_steps):
  """A ConfigError for a `train_steps` a Trainer refuses (None or negative)."""
  if train_steps is None or int(train_steps) < 0:
    raise ConfigError("--train_steps=%s: must be >= 0." % train_steps)


class Trainer:
  """Trains and evaluates one Task's model; see the module docstring.

  Args:
    problem: a registered problem name or a Problem instance (or a `Task`, in which case
      model_name, hparams and data_dir are taken from it and must be None).
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
    eval_bleu_samples: decode this many dev examples at each evaluation and report their
      sacreBLEU as "bleu" (0: don't).
    dev_bleu: with eval_bleu_samples, what decodes and scores them: a function (model, task,
      num_samples) -> sacreBLEU, `t2t_lite.decoding.DevBleu(decode_hparams)` (training/ does
      not import decoding/, so it is passed in).
    keep_best_by: keep the model with the best value of this eval metric in OUTPUT_DIR/best.
    average_last_checkpoints: after training, average the last N checkpoints into
      OUTPUT_DIR/avg (0: don't).
  """

  def __init__(self, problem, model_name, hparams, data_dir, output_dir, train_steps,
               strategy=None, save_checkpoints_steps=DEFAULT_LOCAL_EVAL_FREQUENCY,
               keep_checkpoint_max=DEFAULT_KEEP_CHECKPOINT_MAX,
               log_step_count_steps=DEFAULT_LOG_STEP_COUNT_STEPS, random_seed=None,
               continuous_eval_timeout=600, eval_bleu_samples=0, dev_bleu=None,
               keep_best_by=None, average_last_checkpoints=0):
    check_train_steps(train_steps)
    if random_seed is not None:
      keras.utils.set_random_seed(int(random_seed))
    self.task = problem if isinstance(problem, Task) else Task(
        problem, model_name, hparams, data_dir, random_seed=random_seed)
    self.output_dir = output_dir
    self.train_steps = int(train_steps)
    self.strategy = strategy or tf.distribute.get_strategy()
    self.save_checkpoints_steps = int(save_checkpoints_steps or 0)
    self.keep_checkpoint_max = keep_checkpoint_max
    self.log_step_count_steps = max(1, int(log_step_count_steps or DEFAULT_LOG_STEP_COUNT_STEPS))
    self.continuous_eval_timeout = continuous_eval_timeout
    self.eval_bleu_samples = int(eval_bleu_samples or 0)
    self.dev_bleu = dev_bleu
    evaluation.check_dev_bleu(self.eval_bleu_samples, dev_bleu)
    self.keep_best_by = keep_best_by or None
    self.average_last_checkpoints = int(average_last_checkpoints or 0)
    if self.average_last_checkpoints:
      saves = (-(-self.train_steps // self.save_checkpoints_steps)
               if self.save_checkpoints_steps else 1)
      if self.average_last_checkpoints > min(saves, keep_checkpoint_max):
        raise ConfigError(
            "--average_last_checkpoints=%d: the run keeps at most %d checkpoints "
            "(--train_steps=%d, --save_checkpoints_steps=%d, --keep_checkpoint_max=%d); save "
            "more often or average fewer." % (
                self.average_last_checkpoints, min(saves, keep_checkpoint_max),
                self.train_steps, self.save_checkpoints_steps, keep_checkpoint_max))
    self._log_time = make_relative_timing_fn()
    self._stop_requested = False
    with self.strategy.scope():
      self.model = self.task.build_model()
      self.optimizer = optimizers.create_optimizer(self.hparams, self.train_steps)
      self.optimizer.build(self.model.trainable_variables)
      self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    # Grappler options for the train and eval functions (bfloat16 on a CPU: no MatMul+BiasAdd
    # fusion, see hardware.graph_options); set around their calls, not for the whole process.
    self._graph_options = hardware.graph_options(common_hparams.dtype_policy(
        common_hparams.get(self.hparams, "mixed_precision")))
    if self._graph_options:
      logging.info("Graph options for training and evaluation: %s", self._graph_options)
    self._train_iterator = None
    self._checkpoint = None
    self._train_fn = None
    self._evaluator = None

  # What the Task owns, under the names the trainer always had.
  problem = property(lambda self: self.task.problem)
  hparams = property(lambda self: self.task.hparams)
  data_dir = property(lambda self: self.task.data_dir)
  problem_hparams = property(lambda self: self.task.problem_hparams)

  def _reading_errors(self):
    """tf.data's DataLossError (a corrupt or truncated shard) as a CorruptDataError that
    names the file (the Problem finds it), not a bare error mid-training."""
    return self.problem.reading_errors(self.data_dir)

  # ---------------------------------------------------------------- state
  def _ensure_train_iterator(self):
    if self._train_iterator is None:
      dataset = self.strategy.distribute_datasets_from_function(
          lambda context: self.task.dataset(ModeKeys.TRAIN, input_context=context))
      self._train_iterator = iter(dataset)

  def _ensure_checkpoint(self, with_data):
    if self._checkpoint is None:
      if with_data:
        self._ensure_train_iterator()
      self._checkpoint = TrainingCheckpoint(
          self.output_dir, self.model, self.optimizer, self.global_step,
          self._train_iterator if with_data else None, max_to_keep=self.keep_checkpoint_max)
    return self._checkpoint

  @property
  def latest_checkpoint(self):
    """The newest complete checkpoint in output_dir, or None."""
    return self._ensure_checkpoint(with_data=False).latest

  def restore(self, with_data=True):
    """Restores the newest checkpoint in output_dir that restores, if any; returns its path
    or None. A training run (`with_data`) moves a checkpoint that does not restore aside; an
    evaluation skips it (see `TrainingCheckpoint.restore_newest`)."""
    return self._ensure_checkpoint(with_data).restore_newest(move_aside=with_data)

  def save(self):
    return self._ensure_checkpoint(True).save()

  # ---------------------------------------------------------------- training
  def make_train_fn(self):
    """`train_loop(iterator, num_steps) -> (loss_sum, weight_sum, tokens)`: num_steps steps
    of the Task's train step under the strategy in one tf.function call (the step itself
    XLA-compiled with hparams.xla_compile)."""
    return train_loop.make_train_loop(
        self.task, self.model, self.optimizer, self.strategy, self.global_step,
        xla_compile=common_hparams.get(self.hparams, "xla_compile"))

  def _request_stop(self):
    self._stop_requested = True

  def train(self, train_steps=None, eval_every=None, eval_steps=DEFAULT_EVAL_STEPS):
    """Trains to `train_steps`, evaluating every `eval_every` steps if given.

    Returns the last evaluation's results (a dict) or {} if none ran.
    """
    train_steps = self.train_steps if train_steps is None else int(train_steps)
    self.restore(with_data=True)
    if self._train_fn is None:
      self._train_fn = self.make_train_fn()
    per_loop = max(1, int(common_hparams.get(self.hparams, "iterations_per_loop")))
    step = int(self.global_step.numpy())
    start_step, start_time = step, time.time()
    window_loss = window_weight = window_tokens = 0.0
    window_start, window_step = time.time(), step
    results = {}
    last_saved = step
    with train_loop.stop_on_sigterm(self._request_stop):
      with train_loop.summary_writer(self.output_dir, constants.TRAIN_SUMMARY_DIR) as writer, \
          hardware.graph_options_scope(self._graph_options):
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
                (loss_sum, step, self.latest_checkpoint or "none yet"))
          window_loss += loss_sum
          window_weight += weight_sum
          window_tokens += float(tokens)
          if step % self.log_step_count_steps == 0 or step >= train_steps:
            train_loop.log_train(
                writer, self._log_time, self.optimizer, step, train_steps,
                window_loss / max(window_weight, 1.0), window_tokens, step - window_step,
                time.time() - window_start, (time.time() - start_time) / max(1, step - start_step))
            window_loss = window_weight = window_tokens = 0.0
            window_start, window_step = time.time(), step
          if self.save_checkpoints_steps and step % self.save_checkpoints_steps == 0:
            self.save()
            last_saved = step
          if eval_every and (step % eval_every == 0 or step >= train_steps):
            results = self.evaluate(eval_steps)  # the final step is evaluated too
        if step != last_saved or self.latest_checkpoint is None:
          self.save()
      if self.average_last_checkpoints and step >= train_steps:
        self.average_checkpoints()
    return results

  @property
  def stopped_by_signal(self):
    return self._stop_requested

  # ---------------------------------------------------------------- evaluation
  def evaluate(self, eval_steps=DEFAULT_EVAL_STEPS):
    """Evaluates the current weights on the eval split (see training/evaluation.py).

    Args:
      eval_steps: batches per worker; -1 (or None) evaluates the whole split.

    Returns:
      {metric: value, "loss": ..., "global_step": ...} ("bleu" too with eval_bleu_samples);
      also written to summaries (eval/) and output_dir/eval_results.json.
    """
    if self._evaluator is None:
      self._evaluator = evaluation.Evaluator(
          self.task, self.model, self.strategy, self.output_dir, self.global_step,
          bleu_samples=self.eval_bleu_samples, dev_bleu=self.dev_bleu,
          keep_best_by=self.keep_best_by)
    # With hparams.ema_momentum the moving average of the weights is what is evaluated (and
    # kept as OUTPUT_DIR/best); training continues from the weights themselves.
    def writer():
      return train_loop.summary_writer(self.output_dir, constants.EVAL_SUMMARY_DIR)
    with self._reading_errors(), self.ema_weights(), \
        hardware.graph_options_scope(self._graph_options):
      return self._evaluator.evaluate(eval_steps, writer, self._log_time)

  def ema_weights(self):
    """A context in which the model holds the optimizer's moving average of its weights
    (hparams.ema_momentum > 0 and at least one step taken); otherwise a no-op."""
    return optimizers.ema_weights(self.optimizer, self.model.trainable_variables)

  def continuous_eval(self, eval_steps=DEFAULT_EVAL_STEPS):
    """Evaluates each new checkpoint in output_dir until one reaches train_steps."""
    results = {}
    checkpoint = self._ensure_checkpoint(with_data=False)
    for _ in checkpoint.follow(self.continuous_eval_timeout):
      results = self.evaluate(eval_steps)
      if int(self.global_step.numpy()) >= self.train_steps:
        break
    return results

  def average_checkpoints(self):
    """Averages the last `average_last_checkpoints` checkpoints into OUTPUT_DIR/avg."""
    path = averaging.average_checkpoints(self.output_dir, self.average_last_checkpoints,
                                         max_to_keep=1)
    self._log_time("averaged the last %d checkpoints into %s" % (
        self.average_last_checkpoints, path))
    return path

  # ---------------------------------------------------------------- export
  def export_saved_model(self, exporter, export_dir=None):
    """Exports the model as it is evaluated (the moving average of its weights, with
    hparams.ema_momentum) to export_dir (default OUTPUT_DIR/export); returns the path.

    Args:
      exporter: a function (task, model, export_dir) that writes the SavedModel and returns
        its path: `t2t_lite.decoding.export_logits_model` (feature dict -> logits). Passed
        in: training/ does not import decoding/.
      export_dir: where to write it.
    """
    export_dir = export_dir or os.path.join(self.output_dir, constants.EXPORT_DIR)
    with self.ema_weights():
      return exporter(self.task, self.model, export_dir)

  # ---------------------------------------------------------------- schedules
  def run(self, schedule=DEFAULT_SCHEDULE, eval_steps=DEFAULT_EVAL_STEPS,
          local_eval_frequency=None):
    check_schedule(schedule)
    # The ids must mean the tokens the checkpoints were trained on: a run's first start
    # records its vocabulary in vocab.json, every later start (and evaluation) checks it.
    fingerprint = self.task.vocab_fingerprint()
    if schedule in TRAINING_SCHEDULES:
      output_dir_lib.save_or_check_vocab(self.output_dir, fingerprint, self.data_dir)
    else:
      output_dir_lib.check_vocab(self.output_dir, fingerprint, self.data_dir)
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
    final_step = int(self.global_step.numpy())
    if (schedule == "continuous_train_and_eval" and not self._stop_requested and
        results.get("global_step") != final_step):
      results = self.evaluate(eval_steps)
    return results


def train_supervised(problem, model_name, hparams, data_dir, output_dir, train_steps,
                     eval_steps, local_eval_frequency=None,
                     schedule=DEFAULT_SCHEDULE, **trainer_kwargs):
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
  trainer = Trainer(problem, model_name, hparams, data_dir, output_dir, train_steps,
                    **trainer_kwargs)
  return trainer.run(schedule, eval_steps=eval_steps, local_eval_frequency=local_eval_frequency)
