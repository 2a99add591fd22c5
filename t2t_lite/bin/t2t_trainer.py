"""t2t-trainer: train and evaluate a registered model on a registered problem.

    t2t-trainer --generate_data --problem=algorithmic_reverse_binary40 --model=transformer \\
        --hparams_set=transformer_tiny --data_dir=~/t2t/data --output_dir=~/t2t/train/rev

`--registry_help` lists what is registered. A run on an output_dir that has checkpoints
continues from the newest one; its hparams must match the saved hparams.json unless
--overwrite_output_hparams. SIGTERM saves a checkpoint and exits 0.

A training run holds OUTPUT_DIR/.t2t_lock (its pid and host) until it exits, so a second
trainer on the same output_dir stops with an error; a lock left by a killed run is taken over
(see t2t_lite/utils/lock.py; t2t_lite/output_dir.py owns every file of an output_dir).
Evaluation-only schedules (evaluate, continuous_eval) and non-chief workers of a multi-worker
run do not take it.
"""
import os
import sys

from t2t_lite.bin import common


def main(argv):
  from absl import flags
  from absl import logging

  from t2t_lite import flags as t2t_flags
  from t2t_lite import output_dir as output_dir_lib
  from t2t_lite import registry
  from t2t_lite.constants import TRAINING_SCHEDULES

  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  if common.start(argv):
    return 0

  from t2t_lite.training import distribute  # pylint: disable=g-import-not-at-top
  from t2t_lite.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  common.require_flags("problem", "model", "hparams_set", "data_dir", "output_dir")
  # The Trainer's own checks, run before anything is written.
  trainer_lib.check_schedule(FLAGS.schedule)
  trainer_lib.check_train_steps(FLAGS.train_steps)
  data_dir = os.path.expanduser(FLAGS.data_dir)
  output_dir = os.path.expanduser(FLAGS.output_dir)
  problem = registry.problem(FLAGS.problem)
  registry.model(FLAGS.model)  # an unknown model fails here, before anything is written
  hparams = t2t_flags.create_hparams(FLAGS.hparams_set, FLAGS.hparams,
                                     problem_name=FLAGS.problem)

  trains = FLAGS.schedule in TRAINING_SCHEDULES
  if not FLAGS.generate_data:
    check_data(problem, data_dir, hparams, FLAGS.schedule)

  # Nothing runs TensorFlow ops before the strategy exists (a multi-worker strategy must come
  # first); the lock and the hparams check only touch files, so that their errors come
  # before the strategy's log line.
  lock = output_dir_lib.acquire_lock(output_dir) if trains and distribute.is_chief() else None
  try:
    if not FLAGS.overwrite_output_hparams:
      output_dir_lib.check_hparams(output_dir, hparams)  # a conflict fails here
    strategy = distribute.create_strategy(FLAGS.distribution_strategy, FLAGS.use_tpu,
                                          FLAGS.tpu, FLAGS.worker_gpu)
    if FLAGS.generate_data:
      if not problem.data_exists(data_dir):
        logging.info("Generating data for %s in %s", FLAGS.problem, data_dir)
        print("Generating %s data in %s ..." % (FLAGS.problem, data_dir), flush=True)
        problem.generate_data(data_dir, os.path.expanduser(FLAGS.tmp_dir))
      check_data(problem, data_dir, hparams, FLAGS.schedule)
    return _train(FLAGS, problem, hparams, strategy, data_dir, output_dir, trainer_lib)
  finally:
    if lock is not None:
      lock.release()


def check_data(problem, data_dir, hparams, schedule):
  """A DataNotFoundError (saying how to make the data) if the schedule's splits are missing."""
  from t2t_lite.constants import TRAINING_SCHEDULES  # pylint: disable=g-import-not-at-top
  modes = (["train"] if schedule in TRAINING_SCHEDULES else []) + (
      ["eval"] if schedule != "train" else [])
  if not problem.data_exists(data_dir, sorted({problem.dataset_split(m) for m in modes})):
    for mode in modes:
      problem.dataset(mode, data_dir, hparams)  # raises for missing data


def _train(FLAGS, problem, hparams, strategy, data_dir, output_dir, trainer_lib):  # pylint: disable=invalid-name
  """Everything that writes in output_dir (run under its lock)."""
  from t2t_lite import decoding
  from t2t_lite import flags as t2t_flags
  from t2t_lite import output_dir as output_dir_lib
  from t2t_lite.constants import TRAINING_SCHEDULES

  decode_hp = decoding.decode_hparams(FLAGS.decode_hparams)
  output_dir_lib.save_or_check_hparams(output_dir, hparams, t2t_flags.flags_text(),
                                       overwrite=FLAGS.overwrite_output_hparams)
  trainer = trainer_lib.Trainer(
      problem, FLAGS.model, hparams, data_dir, output_dir, FLAGS.train_steps,
      strategy=strategy,
      save_checkpoints_steps=FLAGS.save_checkpoints_steps or FLAGS.local_eval_frequency,
      keep_checkpoint_max=FLAGS.keep_checkpoint_max,
      log_step_count_steps=FLAGS.log_step_count_steps, random_seed=FLAGS.random_seed,
      eval_bleu_samples=FLAGS.eval_bleu_samples, dev_bleu=decoding.DevBleu(decode_hp),
      keep_best_by=FLAGS.keep_best_by, average_last_checkpoints=FLAGS.average_last_checkpoints)
  if FLAGS.schedule in TRAINING_SCHEDULES:
    print("Training %s (%s) on %s to step %d; checkpoints and summaries in %s" % (
        FLAGS.model, FLAGS.hparams_set, FLAGS.problem, FLAGS.train_steps, output_dir),
          flush=True)
  results = trainer.run(FLAGS.schedule, eval_steps=FLAGS.eval_steps,
                        local_eval_frequency=FLAGS.local_eval_frequency)
  if trainer.stopped_by_signal:
    print("Stopped by SIGTERM at step %d; checkpoint saved in %s." % (
        int(trainer.global_step.numpy()), output_dir))
    return 0
  if FLAGS.export_saved_model:
    print("Exported a SavedModel to %s" % export(trainer, FLAGS.keep_best_by))
  if results:
    print(format_results(results, FLAGS.problem))
  return 0


def export(trainer, keep_best_by):
  """Exports the trained model, or with --keep_best_by the best one kept in OUTPUT_DIR/best."""
  from t2t_lite import constants  # pylint: disable=g-import-not-at-top
  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  if not keep_best_by:
    return trainer.export_saved_model(decoding.export_logits_model)
  best_dir = os.path.join(trainer.output_dir, constants.BEST_DIR)
  model, _ = trainer.task.restore_for_inference(best_dir)
  return decoding.export_logits_model(trainer.task, model,
                                      os.path.join(best_dir, constants.EXPORT_DIR))


def format_results(results, problem_name):
  """The evaluation as lines `  name  value`, accuracy first."""
  order = ["accuracy", "accuracy_per_sequence", "accuracy_top5", "neg_log_perplexity",
           "approx_bleu_score", "loss"]
  names = [n for n in order if n in results] + sorted(
      n for n in results if n not in order and n != "global_step")
  lines = ["Evaluation of %s at step %d:" % (problem_name, results.get("global_step", -1))]
  for name in names:
    label = {"accuracy": "accuracy (per token)" if "accuracy_per_sequence" in results
                         else "accuracy",
             "accuracy_per_sequence": "accuracy (per sequence)"}.get(name, name)
    lines.append("  %-26s %.4f" % (label, results[name]))
  return "\n".join(lines)


def console_main():
  common.run_main(main, "t2t-trainer", __doc__)


if __name__ == "__main__":
  console_main()
