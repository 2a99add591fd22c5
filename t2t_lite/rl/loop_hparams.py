"""The model-based loop's hparams: the registered sets (rlmb_*), their checks, and the world
model's hparams they name.

    hparams = registry.hparams("rlmb_tiny")    # registered when t2t_lite.rl is imported
    hparams.parse("epochs=3,world_model_hparams='hidden_size=32'")
    check_loop_hparams(hparams)                # ConfigError for settings that cannot work
    world_model_hparams(hparams)               # transformer_tiny with hidden_size=32

A loop's output_dir keeps its loop hparams in loop_hparams.json (`save_or_check_loop_hparams`),
checked on every rerun like a trainer's hparams.json.
"""
from t2t_lite import common_hparams
from t2t_lite import constants
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.errors import ConfigError
from t2t_lite.hparams import HParams

# rlmb_small's results (its docstring) were measured with tensor2tensor's noam schedule at
# transformer_tiny's earlier constant; it keeps them.
_WORLD_MODEL_LR = "learning_rate_schedule=noam,learning_rate_constant=0.3"


def rlmb_common():
  """The loop hparams every set starts from (not registered; see rlmb_base)."""
  return HParams(
      problem="world_model_bouncing_ball",  # a registered WorldModelProblem (--problem)
      epochs=3,
      num_real_env_frames=6000,  # real environment steps over the whole run
      policy="random",  # a t2t_lite.rl.policies name
      dev_fraction=0.1,  # of each epoch's steps, collected in held-out episodes
      world_model="transformer",
      world_model_hparams_set="transformer_tiny",
      world_model_hparams="",  # overrides of the set: "hidden_size=64,num_heads=2"
      world_model_train_steps=1000,  # per epoch; epoch N trains on to (N + 1) times this
      world_model_eval_steps=20,  # batches of the trainer's own evaluation (-1: all)
      world_model_schedule="continuous_train_and_eval",  # or "train" (no trainer eval)
      eval_num_subsequences=200,  # held-out windows the world model predicts each epoch
      eval_batch_size=64,
      debug_video_examples=4,  # predictions drawn into world_model/debug_videos
  )


@registry.register_hparams
def rlmb_base():
  """The model-based loop on world_model_bouncing_ball (8x8) with transformer_tiny.

  Run it:

      t2t-trainer-model-based --output_dir=~/t2t_rl/bouncing_ball --loop_hparams_set=rlmb_base

  Result on this machine: not run to the end here (rlmb_small, 3 epochs: next-frame error
  0.025, frame accuracy 0.80, reward accuracy 0.85 in 7.5 minutes on a loaded machine).
  """
  return rlmb_common()


@registry.register_hparams
def rlmb_tiny():
  """A smoke-test loop: 4x4 grid, 2 epochs, a 1-layer 16-wide transformer, 20 steps an epoch.

  Run it (seconds on a laptop CPU):

      t2t-trainer-model-based --output_dir=/tmp/rlmb_tiny --loop_hparams_set=rlmb_tiny
  """
  return rlmb_common().override_from_dict(dict(
      problem="world_model_bouncing_ball_tiny", epochs=2, num_real_env_frames=200,
      dev_fraction=0.2, world_model_train_steps=20, world_model_eval_steps=2,
      eval_num_subsequences=16, eval_batch_size=16, debug_video_examples=2,
      world_model_hparams=("hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=1,"
                           "batch_size=512,learning_rate_warmup_steps=10")))


@registry.register_hparams
def rlmb_small():
  """The loop on the 4x4 grid with a 2-layer 64-wide transformer: a world model that learns.

  Run it:

      t2t-trainer-model-based --output_dir=~/t2t_rl/rlmb_small --loop_hparams_set=rlmb_small \
          --random_seed=1

  Result on this machine (2 CPU cores shared with other jobs, 7.5 minutes): after the 3 epochs
  (3000 real frames, 900 world-model steps), on 200 held-out windows, next_frame_error 0.025,
  frame_accuracy 0.80, reward_accuracy 0.85 (epoch 0: 0.154 / 0.14 / 0.725).
  """
  return rlmb_common().override_from_dict(dict(
      problem="world_model_bouncing_ball_tiny", epochs=3, num_real_env_frames=3000,
      dev_fraction=0.2, world_model_train_steps=300, eval_num_subsequences=200,
      eval_batch_size=100,
      world_model_hparams=(
          _WORLD_MODEL_LR + ",hidden_size=64,filter_size=128,num_heads=4,num_hidden_layers=2,"
          "batch_size=2048,learning_rate_warmup_steps=100,layer_prepostprocess_dropout=0.0,"
          "attention_dropout=0.0,relu_dropout=0.0")))


def check_loop_hparams(hparams):
  """Raises ConfigError for loop hparams that cannot work."""
  if int(hparams.epochs) <= 0:
    raise ConfigError("epochs=%d: the loop needs at least one epoch." % hparams.epochs)
  if int(hparams.num_real_env_frames) <= 0:
    raise ConfigError("num_real_env_frames=%d: must be positive." % hparams.num_real_env_frames)
  if not 0.0 < float(hparams.dev_fraction) < 1.0:
    raise ConfigError("dev_fraction=%s: must be between 0 and 1 (held-out episodes are needed "
                      "to evaluate the world model)." % hparams.dev_fraction)
  if int(hparams.world_model_train_steps) < 0:
    raise ConfigError("world_model_train_steps=%d: must be >= 0." %
                      hparams.world_model_train_steps)


def world_model_hparams(loop_hparams):
  """The world model's HParams, as t2t-trainer makes them: `world_model_hparams_set` with the
  `world_model_hparams` overrides parsed by `HParams.parse`, recording the set and problem.

  Raises:
    UnknownNameError: an unknown set. HParamsError: a bad overrides string.
  """
  hparams = common_hparams.create_hparams(loop_hparams.world_model_hparams_set,
                                         loop_hparams.world_model_hparams,
                                         problem_name=loop_hparams.problem)
  # World-model examples all have one length (frame_stack_size + 1 frames of tokens), longer
  # than a set's packed rows may be (transformer_tiny packs rows of 64 tokens), and packing
  # drops examples longer than a row: no packing unless the overrides ask for it.
  if "packed_length" not in str(loop_hparams.world_model_hparams or ""):
    hparams.packed_length = 0
  # The world model trains epoch after epoch, each run to a further train_steps. A decay sized
  # by one run (cosine's or wsd's, learning_rate_decay_steps=0) would reach zero at the end of
  # every epoch and jump back up in the next; a cosine sized by the whole loop runs instead
  # (transformer_tiny's wsd, unless the overrides name a schedule).
  schedule = common_hparams.get(hparams, "learning_rate_schedule")
  if (schedule == "wsd" and not common_hparams.get(hparams, "learning_rate_decay_steps")
      and "learning_rate_schedule" not in str(loop_hparams.world_model_hparams or "")):
    hparams.learning_rate_schedule = schedule = "cosine"
  if schedule == "cosine" and not common_hparams.get(hparams, "learning_rate_decay_steps"):
    total = int(loop_hparams.epochs) * int(loop_hparams.world_model_train_steps)
    warmup = int(common_hparams.get(hparams, "learning_rate_warmup_steps"))
    hparams.learning_rate_decay_steps = max(1, total - warmup)
  return hparams


def save_or_check_loop_hparams(output_dir, hparams, overwrite=False):
  """Writes OUTPUT_DIR/loop_hparams.json, or checks `hparams` against the one there (the
  check and the message of hparams.json: `output_dir.save_or_check_hparams`).

  Raises:
    ConfigError: the saved loop hparams differ (and not `overwrite`): the finished epochs
      there were run with other settings; or the file is not valid.
  """
  output_dir_lib.save_or_check_hparams(output_dir, hparams, overwrite=overwrite,
                                       filename=constants.LOOP_HPARAMS_FILENAME)
