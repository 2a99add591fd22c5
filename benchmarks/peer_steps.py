"""Steps to a per-token accuracy: how fast, per training step, a model learns a problem.

Trains t2t_lite's Trainer (the code t2t-trainer runs) with an hparams set and overrides,
evaluates every `--eval_every` steps on the whole dev split (per-token, teacher-forced accuracy:
the trainer's `accuracy` metric) and stops at the first evaluation that reaches `--target`.
The learning-rate schedule runs over `--train_steps` (cosine decays over it) whether or not the
run stops early, so a run that stops at step 3000 saw the same rates as the first 3000 steps of
`t2t-trainer --train_steps=8000 --schedule=train_and_evaluate --local_eval_frequency=500`.

    python -m benchmarks.peer_steps --hparams_set=transformer_tiny --seed=1 \\
        --data_dir=/tmp/rev40/data --output_dir=/tmp/rev40/runs/tiny_s1

Evaluation batches the dev split by `--eval_batch_size` tokens (the figure does not depend on
the batching: it is a sum over every dev token); training batches by the set's batch_size,
in packed rows where the set packs them (`--hparams=packed_length=N` changes the row length,
0 turns packing off: t2t_lite/data/packing.py).
CPU contention changes the seconds, not the steps: the figure to compare is the step.
Each run appends one JSON line to `--results` (steps to target, the evaluations, the set).
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common as bench_common  # noqa: E402


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--problem", default="algorithmic_reverse_binary40")
  parser.add_argument("--model", default="transformer")
  parser.add_argument("--hparams_set", default="transformer_tiny")
  parser.add_argument("--hparams", default="", help="overrides, as t2t-trainer's --hparams")
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--train_steps", type=int, default=8000,
                      help="the schedule's length (cosine decays over it)")
  parser.add_argument("--max_steps", type=int, default=0,
                      help="stop here even below the target (default: train_steps)")
  parser.add_argument("--eval_every", type=int, default=500)
  parser.add_argument("--eval_batch_size", type=int, default=4096, help="tokens")
  parser.add_argument("--target", type=float, default=0.99)
  parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads")
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--name", default="", help="the row's name (default: output_dir's)")
  parser.add_argument("--results", default="", help="a .jsonl file to append the run to")
  return parser.parse_args(argv)


def steps_to_target(args):
  """Trains until the target or max_steps; returns the run's record (a dict)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(max(2, args.threads))
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  from t2t_lite.bin import common  # pylint: disable=g-import-not-at-top
  from t2t_lite.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  common.import_registrations(None)
  hparams = t2t_flags.create_hparams(args.hparams_set, args.hparams, problem_name=args.problem)
  trainer = trainer_lib.Trainer(args.problem, args.model, hparams, args.data_dir,
                                args.output_dir, args.train_steps, random_seed=args.seed,
                                save_checkpoints_steps=0, log_step_count_steps=args.eval_every)
  train_batch_size = hparams.batch_size
  train_fixed = hparams.fixed_batch_shapes
  max_steps = args.max_steps or args.train_steps
  evals, reached = [], None
  start = time.time()
  step = 0
  while step < max_steps:
    step = min(step + args.eval_every, max_steps)
    trainer.train(train_steps=step)
    # The eval dataset only (training's is built): batched by tokens, never fixed shapes
    # (fixed_batch_shapes drops the last partial batch: the figure covers the whole split).
    hparams.batch_size = args.eval_batch_size
    hparams.fixed_batch_shapes = False
    try:
      results = trainer.evaluate(-1)
    finally:
      hparams.batch_size = train_batch_size
      hparams.fixed_batch_shapes = train_fixed
    evals.append({"step": step, "accuracy": round(results["accuracy"], 5),
                  "accuracy_per_sequence": round(results.get("accuracy_per_sequence", 0), 5),
                  "loss": round(results["loss"], 5)})
    print("%s step %d accuracy %.4f per_sequence %.4f loss %.4f (%.0f s)" % (
        args.name, step, results["accuracy"], results.get("accuracy_per_sequence", 0),
        results["loss"], time.time() - start), flush=True)
    if results["accuracy"] >= args.target:
      reached = step
      break
  return {"name": args.name, "hparams_set": args.hparams_set, "hparams": args.hparams,
          "seed": args.seed, "train_steps": args.train_steps, "target": args.target,
          "steps_to_target": reached, "evals": evals}


def main(argv=None):
  args = parse_args(argv)
  args.name = args.name or os.path.basename(os.path.normpath(args.output_dir))
  record = steps_to_target(args)
  bench_common.report_steps_to_target(record, args.results)


if __name__ == "__main__":
  main()
