"""Evaluation for the trainer: teacher-forced metrics, decoded sacreBLEU, the best checkpoint.

    evaluator = Evaluator(task, model, strategy, output_dir, global_step,
                          bleu_samples=200, dev_bleu=decoding.DevBleu(decode_hparams),
                          keep_best_by="bleu")
    results = evaluator.evaluate(eval_steps=100, summary_writer=..., log=...)

Each evaluation

- runs the Task's eval step over `eval_steps` batches of the eval split under the strategy and
  adds up every metric's (numerator, denominator) pair (approx_bleu_score, the cheap
  teacher-forced proxy, is added up on the host from the argmax predictions);
- with `bleu_samples` > 0, has `dev_bleu` decode that many dev examples (greedy or beam
  search, as t2t-decoder would: `t2t_lite.decoding.DevBleu`, passed in, since training/ does
  not import decoding/), detokenize them with the problem's target encoder and score them
  against their references with sacreBLEU: `bleu` (0-100);
- writes every value to the eval summaries and OUTPUT_DIR/eval_results.json;
- with `keep_best_by` (a metric name), saves the model to OUTPUT_DIR/best when the metric beats
  the best value so far ("loss" is lower-is-better, every other metric higher-is-better), with
  the run's hparams.json and its eval_results.json, so that OUTPUT_DIR/best is a run directory
  t2t-decoder and the exporters accept.
"""
import os

import tensorflow as tf
from absl import logging

from t2t_lite import constants
from t2t_lite import output_dir as output_dir_lib
from t2t_lite.constants import ModeKeys
from t2t_lite.errors import ConfigError
from t2t_lite.models import metrics as metrics_lib

LOWER_IS_BETTER = ("loss",)


def check_dev_bleu(bleu_samples, dev_bleu):
  """A ValueError for BLEU samples without the function that decodes and scores them."""
  if bleu_samples and dev_bleu is None:
    raise ValueError("%d BLEU samples need dev_bleu, the function that decodes and scores "
                     "them (t2t_lite.decoding.DevBleu(decode_hparams))." % bleu_samples)


class Evaluator:
  """Evaluates a Task's model (see the module docstring).

  Args:
    task: the Task.
    model: its built model (restored or being trained).
    strategy: the tf.distribute strategy the model lives in.
    output_dir: the run's directory.
    global_step: the step variable (the results are labelled with it).
    bleu_samples: dev examples decoded for `bleu` at each evaluation (0: none).
    dev_bleu: with bleu_samples, a function (model, task, num_samples) -> the sacreBLEU of
      num_samples decoded dev examples (`t2t_lite.decoding.DevBleu(decode_hparams)`).
    keep_best_by: a metric name: keep the best model in OUTPUT_DIR/best; "" or None: don't.
  """

  def __init__(self, task, model, strategy, output_dir, global_step, bleu_samples=0,
               dev_bleu=None, keep_best_by=None):
    self.task = task
    self.model = model
    self.strategy = strategy
    self.output_dir = output_dir
    self.global_step = global_step
    self.bleu_samples = int(bleu_samples or 0)
    self.dev_bleu = dev_bleu
    self.keep_best_by = keep_best_by or None
    if self.bleu_samples and not task.sequence_targets:
      raise ConfigError("--eval_bleu_samples: problem %s has class-label targets; BLEU scores "
                        "decoded sequences." % task.problem.name)
    check_dev_bleu(self.bleu_samples, dev_bleu)
    self._eval_fn = None
    self._eval_spec = None
    self._best = None

  # -- teacher-forced metrics ------------------------------------------------------------------

  def _make_eval_fn(self, element_spec):
    strategy = self.strategy
    with_predictions = bool(self.task.metrics()[1])
    # Traced once for every batch shape where the batches' spec is plain tensors (dims that
    # vary are None in it): without a signature tf.function traces the first batch's shapes,
    # then a relaxed version at the second batch, each trace a second or more of a first
    # evaluation. A distributed spec (several replicas) goes the relaxing way.
    if all(isinstance(x, tf.TensorSpec) for x in tf.nest.flatten(element_spec)):
      options = {"input_signature": [element_spec]}
    else:
      options = {"reduce_retracing": True}

    # No autograph (see Trainer.make_train_fn): the step is plain Python over tensors.
    @tf.function(autograph=False, **options)
    def eval_step(features):
      sums, extra = strategy.run(self.task.eval_step, args=(self.model, features,
                                                            with_predictions))
      sums = tf.nest.map_structure(
          lambda x: strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None), sums)
      return sums, extra

    return eval_step

  def _dataset(self, eval_steps):
    take = int(eval_steps) if eval_steps not in (None, -1) else -1

    def dataset_fn(input_context):
      ds = self.task.dataset(ModeKeys.EVAL, input_context=input_context, shuffle=False)
      if take < 0:
        return ds
      # eval_steps counts steps of the global batch: each pipeline feeds all of its worker's
      # replicas, one per-replica batch each per step.
      per_step = max(1, input_context.num_replicas_in_sync // input_context.num_input_pipelines)
      return ds.take(take * per_step)

    return self.strategy.distribute_datasets_from_function(dataset_fn)

  def metric_values(self, eval_steps):
    """({metric: value}, batches) of the teacher-forced metrics over eval_steps batches."""
    dataset = self._dataset(eval_steps)
    if self._eval_fn is None or self._eval_spec != dataset.element_spec:
      self._eval_fn = self._make_eval_fn(dataset.element_spec)
      self._eval_spec = dataset.element_spec
    totals = {}
    bleu = (metrics_lib.BleuAccumulator() if "approx_bleu_score" in self.task.metrics()[1]
            else None)
    batches = 0
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
    results = {name: num / den if den else 0.0 for name, (num, den) in totals.items()}
    if bleu is not None:
      results["approx_bleu_score"] = bleu.result()
    return results, batches

  # -- decoded BLEU ------------------------------------------------------------------------------

  def decoded_bleu(self):
    """sacreBLEU (0-100) of `bleu_samples` decoded dev examples against their targets."""
    return self.dev_bleu(self.model, self.task, self.bleu_samples)

  # -- one evaluation ----------------------------------------------------------------------------

  def evaluate(self, eval_steps, summary_writer, log):
    """Evaluates the current weights; returns {metric: value, "global_step": step}.

    Args:
      eval_steps: batches per worker; -1 (or None) evaluates the whole split.
      summary_writer: a context manager factory giving the eval tf.summary writer.
      log: a function of one line of text (the trainer's timing log).
    """
    results, batches = self.metric_values(eval_steps)
    if self.bleu_samples:
      results["bleu"] = self.decoded_bleu()
    step = int(self.global_step.numpy())
    results["global_step"] = step
    with summary_writer() as writer:
      with writer.as_default(step=step):
        for name, value in results.items():
          if name != "global_step":
            tf.summary.scalar(name, value)
    output_dir_lib.write_eval_results(self.output_dir, results)
    log("eval at step %d over %d batches%s: %s" % (
        step, batches, " and %d decoded examples" % self.bleu_samples if self.bleu_samples
        else "", " ".join("%s=%.4f" % (k, v) for k, v in sorted(results.items())
                          if k != "global_step")))
    if self.keep_best_by:
      self._keep_if_best(results)
    return results

  # -- the best checkpoint -----------------------------------------------------------------------

  @property
  def best_dir(self):
    return os.path.join(self.output_dir, constants.BEST_DIR)

  def _keep_if_best(self, results):
    metric = self.keep_best_by
    if metric not in results:
      raise ConfigError("--keep_best_by=%s: the evaluation has no such metric; it has %s." % (
          metric, ", ".join(sorted(k for k in results if k != "global_step"))))
    if self._best is None:
      self._best = _best_saved(self.best_dir, metric)
    value = float(results[metric])
    lower = metric in LOWER_IS_BETTER
    if self._best is not None and not (value < self._best if lower else value > self._best):
      return False
    checkpoint = tf.train.Checkpoint(model=self.model, step=self.global_step)
    manager = tf.train.CheckpointManager(checkpoint, self.best_dir, max_to_keep=1,
                                         checkpoint_name=constants.CHECKPOINT_NAME,
                                         step_counter=self.global_step)
    try:
      path = manager.save(checkpoint_number=self.global_step)
    except output_dir_lib.write_errors() as e:
      raise output_dir_lib.write_failed("the best checkpoint", self.best_dir, e,
                                        "the training checkpoints are kept") from None
    hparams = output_dir_lib.read_saved_hparams(self.output_dir)
    if hparams is not None:
      output_dir_lib.save_or_check_hparams(self.best_dir, hparams, overwrite=True)
    output_dir_lib.copy_vocab_fingerprint(self.output_dir, self.best_dir)
    output_dir_lib.write_eval_results(self.best_dir, results)
    logging.info("New best %s %.4f (was %s): saved %s", metric, value, self._best, path)
    self._best = value
    return True


def _best_saved(best_dir, metric):
  """The metric's value of the model kept in best_dir, or None."""
  value = output_dir_lib.read_eval_results(best_dir).get(metric)
  return None if value is None else float(value)
