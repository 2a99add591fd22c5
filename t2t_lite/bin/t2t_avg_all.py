"""t2t-avg-all: average the last N checkpoints of a training run into a new checkpoint.

    t2t-avg-all --model_dir=~/t2t/train/ende --n=8                # -> ~/t2t/train/ende/avg
    t2t-decoder ... --output_dir=~/t2t/train/ende/avg             # decode with the average

Every float variable of the model is the mean of its values in the N newest checkpoints of
--model_dir; the step (and any integer variable) is the newest one's. The result is
OUTPUT_DIR/ckpt-STEP, with the run's hparams.json and flags.txt beside it, so OUTPUT_DIR is a
run directory that t2t-decoder reads like any other. Optimizer and data state are left out.

With --wait_minutes=M it follows a training run: it averages the last N as soon as there
are N, and again each time a new checkpoint appears, until none has appeared for M minutes.
(tensor2tensor's t2t-avg-all also averaged every older window of N; this one starts from the
newest.)

Flags:

    --model_dir           the training run (its --output_dir); required
    --n                   how many checkpoints to average (default 8); fewer is an error
    --output_dir          where to write the averaged checkpoints (default MODEL_DIR/avg)
    --min_steps           leave out checkpoints with fewer steps (default: none)
    --wait_minutes        follow the run, up to M minutes between checkpoints (default 0:
                          average once and exit)
    --keep_checkpoint_max averaged checkpoints kept in --output_dir (default 20)
"""
import os

from absl import flags

from t2t_lite.bin import common

PROG = "t2t-avg-all"


def _define_flags():
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  define = t2t_flags.define_once
  define(flags.DEFINE_string, "model_dir", None,
         "t2t-avg-all: the training run whose checkpoints to average.")
  define(flags.DEFINE_integer, "n", 8, "t2t-avg-all: how many checkpoints to average.")
  define(flags.DEFINE_integer, "min_steps", -1,
         "t2t-avg-all, t2t-bleu: leave out checkpoints (translations) with fewer steps. -1: "
         "none (t2t-bleu with --event_dir: those up to EVENT_DIR/last_evaluated_step.txt).")
  define(flags.DEFINE_integer, "wait_minutes", 0,
         "t2t-avg-all, t2t-bleu: keep following the run, waiting up to this many minutes for "
         "each new checkpoint (translation); 0: do what is there and exit.")


_define_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv  # unused
  from t2t_lite.training import averaging  # pylint: disable=g-import-not-at-top

  common.require_flags("model_dir")
  model_dir = os.path.expanduser(FLAGS.model_dir)
  output_dir = (os.path.expanduser(FLAGS.output_dir) if FLAGS.output_dir else
                averaging.default_output_dir(model_dir))
  kwargs = dict(min_steps=max(0, FLAGS.min_steps), max_to_keep=FLAGS.keep_checkpoint_max)
  if FLAGS.wait_minutes > 0:
    paths = averaging.follow_and_average(model_dir, FLAGS.n, output_dir,
                                         wait_secs=FLAGS.wait_minutes * 60, **kwargs)
  else:
    paths = [averaging.average_checkpoints(model_dir, FLAGS.n, output_dir, **kwargs)]
  for path in paths:
    print("Averaged the last %d checkpoints of %s into %s" % (FLAGS.n, model_dir, path),
          flush=True)
  return 0


def console_main():
  common.run_main(main, PROG, __doc__)


if __name__ == "__main__":
  console_main()
