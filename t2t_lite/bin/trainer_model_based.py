r"""t2t-trainer-model-based: the model-based RL loop (collect, train a world model, evaluate).

    t2t-trainer-model-based --output_dir=~/t2t_rl/bouncing_ball --loop_hparams_set=rlmb_base \
        --epochs=3 --num_real_env_frames=6000 \
        --hparams="world_model_train_steps=500,world_model_hparams='hidden_size=64,num_heads=2'"

Flags (besides the shared `--output_dir`, `--hparams`, `--random_seed`, `--t2t_usr_dir` and
`--registry_help` of `t2t_lite.flags`):

    --loop_hparams_set     the loop's hparams set (rlmb_base, rlmb_tiny, or your own)
    --hparams              overrides of the loop hparams; world_model_hparams is itself an
                           overrides string of the world model's set, so quote it
    --problem              the world-model problem (overrides hparams.problem), e.g.
                           world_model_bouncing_ball_tiny
    --epochs               overrides hparams.epochs
    --num_real_env_frames  overrides hparams.num_real_env_frames
    --overwrite_output_hparams  go on in an --output_dir that was run with other loop hparams

A rerun on the same --output_dir continues: finished epochs (eval_metrics/epoch_N.json) are
skipped. See `t2t_lite.rl.trainer_model_based` for what each epoch does.
"""
import sys

from absl import flags

from t2t_lite.bin import common

PROG = "t2t-trainer-model-based"


def _define_flags():
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  define = t2t_flags.define_once
  define(flags.DEFINE_string, "loop_hparams_set", "rlmb_base",
         "t2t-trainer-model-based: the loop's hparams set, e.g. rlmb_base or rlmb_tiny.")
  define(flags.DEFINE_integer, "epochs", None,
         "t2t-trainer-model-based: epochs of collect/train/evaluate (overrides the hparams).")
  define(flags.DEFINE_integer, "num_real_env_frames", None,
         "t2t-trainer-model-based: real environment steps over the whole run, split evenly "
         "over the epochs (overrides the hparams).")


_define_flags()
FLAGS = flags.FLAGS


def create_loop_hparams(hparams_set, overrides="", epochs=None, num_real_env_frames=None,
                        problem=None):
  """The loop hparams: the set, then the `--hparams` overrides (`HParams.parse`), then
  --epochs, --num_real_env_frames and --problem when given."""
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.errors import ConfigError, UnknownNameError  # pylint: disable=g-import-not-at-top
  import t2t_lite.rl.loop_hparams  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  try:
    hparams = registry.hparams(hparams_set)
  except UnknownNameError as e:
    raise UnknownNameError(str(e).replace("--hparams_set=", "--loop_hparams_set=", 1)) from None
  for name in ("epochs", "num_real_env_frames", "world_model_hparams_set"):
    if name not in hparams:
      raise ConfigError("--loop_hparams_set=%s has no %s; it is not a model-based loop hparams "
                        "set (try rlmb_base)." % (hparams_set, name))
  hparams.parse(overrides or "")
  if epochs is not None:
    hparams.epochs = int(epochs)
  if num_real_env_frames is not None:
    hparams.num_real_env_frames = int(num_real_env_frames)
  if problem:
    hparams.problem = problem
  return hparams


def main(argv):
  """Runs the loop from the flags (an absl main: returns None)."""
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite import usr_dir  # pylint: disable=g-import-not-at-top
  from t2t_lite.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from t2t_lite.rl import loop_hparams  # pylint: disable=g-import-not-at-top
  from t2t_lite.rl import trainer_model_based  # pylint: disable=g-import-not-at-top
  t2t_flags.set_hparams_from_args(argv[1:])
  if FLAGS.t2t_usr_dir:
    usr_dir.import_usr_dirs(FLAGS.t2t_usr_dir)
  if not FLAGS.registry_help:
    # Mistakes in the flags and loop hparams are reported before TensorFlow is imported.
    if not FLAGS.output_dir:
      raise ConfigError("--output_dir is required: where the rollouts, the world model and "
                        "the metrics of the run go.")
    hparams = create_loop_hparams(FLAGS.loop_hparams_set, FLAGS.hparams, FLAGS.epochs,
                                  FLAGS.num_real_env_frames, FLAGS.problem)
    loop_hparams.check_loop_hparams(hparams)
  import problems  # pylint: disable=g-import-not-at-top,unused-import
  import t2t_lite.models  # pylint: disable=g-import-not-at-top,unused-import
  if FLAGS.registry_help:
    print(registry.help_string())
    return
  records = trainer_model_based.training_loop(hparams, FLAGS.output_dir,
                                              random_seed=FLAGS.random_seed,
                                              overwrite_hparams=FLAGS.overwrite_output_hparams)
  if records:
    last = records[-1]["world_model"]
    print("%s: %d epochs done; last: next_frame_error %.4f, frame_accuracy %.4f, "
          "reward_accuracy %.4f (eval_metrics in %s)" %
          (PROG, len(records), last["next_frame_error"], last["frame_accuracy"],
           last["reward_accuracy"], FLAGS.output_dir))


def console_main():
  """The `t2t-trainer-model-based` console script."""
  common.run_main(main, PROG)


if __name__ == "__main__":
  sys.exit(console_main())
