"""The model-based RL loop: collect real experience, train a world model on it, evaluate it.

    from t2t_lite.rl import trainer_model_based as tmb
    hparams = registry.hparams("rlmb_base")
    records = tmb.training_loop(hparams, "/tmp/rl_run", random_seed=1)
    records[-1]["world_model"]["next_frame_error"]

or from the command line (`t2t_lite/bin/trainer_model_based.py`):

    t2t-trainer-model-based --output_dir=~/t2t_rl/bouncing_ball --epochs=3 \\
        --num_real_env_frames=6000 --loop_hparams_set=rlmb_base

Each of `hparams.epochs` epochs:

1. collects `real_env_step_increment(hparams)` steps in the problem's real environment with
   the current policy (`hparams.policy`, a `t2t_lite.rl.policies` name; "random" to start),
   `dev_fraction` of them in separate held-out episodes, and writes the rollouts to
   `data/rollouts/epoch_N-{train,dev}.tfrecord`;
2. writes the world-model examples of *all* rollouts so far into `data/epoch_N/` and trains
   the world model (`hparams.world_model`, e.g. the transformer) with the supervised trainer
   in `world_model/`, on to `world_model_train_steps * (N + 1)` steps (the checkpoints carry
   the model over from epoch to epoch);
3. evaluates it on `eval_num_subsequences` held-out windows: it predicts each next frame and
   reward greedily and reports `next_frame_error` (pixel tokens wrong), `frame_accuracy` and
   `reward_accuracy`; a few predictions are drawn into `world_model/debug_videos/epoch_N.txt`;
4. records the epoch in `eval_metrics/epoch_N.json` (written atomically). A rerun on the same
   output_dir skips every epoch that has its record, so an interrupted run continues.

Every step is logged with the time since the start (`Timing: H:MM:SS.ffffff`).
"""
import json
import os

import numpy as np

from t2t_lite import registry
from t2t_lite.errors import ConfigError, HParamsError
from t2t_lite.hparams import HParams
from t2t_lite.rl import rollout_io
from t2t_lite.rl.envs import collect_rollouts
from t2t_lite.rl.policies import make_policy
from t2t_lite.rl.rollouts import (compute_mean_reward, num_frames, random_rollout_subsequences,
                                  real_env_step_increment)
from t2t_lite.utils import make_relative_timing_fn, setup_directories, write_json_atomically

# rlmb_small's results (its docstring) were measured with tensor2tensor's noam schedule at
# transformer_tiny's earlier constant; it keeps them.
_WORLD_MODEL_LR = "learning_rate_schedule=noam,learning_rate_constant=0.3"

SUBDIRECTORIES = ("data", "tmp", "world_model", ("world_model", "debug_videos"), "policy",
                  "eval_metrics")


# --- hparams sets ------------------------------------------------------------------------------


def rlmb_common():
  """The loop hparams every set starts from (not registered; see rlmb_base)."""
  return HParams(
      problem="world_model_bouncing_ball",  # a registered WorldModelProblem
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
  hparams = rlmb_common()
  hparams.problem = "world_model_bouncing_ball_tiny"
  hparams.epochs = 2
  hparams.num_real_env_frames = 200
  hparams.dev_fraction = 0.2
  hparams.world_model_hparams = ("hidden_size=16,filter_size=32,num_heads=2,"
                                 "num_hidden_layers=1,batch_size=512,"
                                 "learning_rate_warmup_steps=10")
  hparams.world_model_train_steps = 20
  hparams.world_model_eval_steps = 2
  hparams.eval_num_subsequences = 16
  hparams.eval_batch_size = 16
  hparams.debug_video_examples = 2
  return hparams


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
  hparams = rlmb_common()
  hparams.problem = "world_model_bouncing_ball_tiny"
  hparams.epochs = 3
  hparams.num_real_env_frames = 3000
  hparams.dev_fraction = 0.2
  hparams.world_model_hparams = (
      _WORLD_MODEL_LR + ",hidden_size=64,filter_size=128,num_heads=4,num_hidden_layers=2,"
      "batch_size=2048,learning_rate_warmup_steps=100,layer_prepostprocess_dropout=0.0,"
      "attention_dropout=0.0,relu_dropout=0.0")
  hparams.world_model_train_steps = 300
  hparams.eval_num_subsequences = 200
  hparams.eval_batch_size = 100
  return hparams


def parse_overrides(hparams, overrides):
  """Applies an "a=1,b=x" string to `hparams` (its own `parse` when it has one)."""
  if not overrides:
    return hparams
  if callable(getattr(hparams, "parse", None)):
    hparams.parse(overrides)
    return hparams
  for item in overrides.split(","):
    if not item.strip():
      continue
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or name not in hparams:
      raise HParamsError("hparams override %r: expected NAME=VALUE with a known NAME." % item)
    old = getattr(hparams, name)
    try:
      value = type(old)(text) if not isinstance(old, bool) else text.lower() in ("1", "true")
    except ValueError:
      raise HParamsError("hparams override %r: %r is not a %s." %
                         (item, text, type(old).__name__)) from None
    setattr(hparams, name, value)
  return hparams


def world_model_hparams(loop_hparams):
  """The world model's HParams: `world_model_hparams_set` with `world_model_hparams` applied."""
  hparams = registry.hparams(loop_hparams.world_model_hparams_set)
  hparams = parse_overrides(hparams, loop_hparams.world_model_hparams)
  # The world model trains epoch after epoch, each run to a further train_steps. A cosine decay
  # sized by one run (learning_rate_decay_steps=0: train_steps) would reach zero at the end of
  # every epoch and jump back up in the next; it is sized by the whole loop instead.
  if (getattr(hparams, "learning_rate_schedule", None) == "cosine"
      and not getattr(hparams, "learning_rate_decay_steps", 1)):
    total = int(loop_hparams.epochs) * int(loop_hparams.world_model_train_steps)
    warmup = int(getattr(hparams, "learning_rate_warmup_steps", 0))
    hparams.learning_rate_decay_steps = max(1, total - warmup)
  return hparams


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


# --- pieces of an epoch ------------------------------------------------------------------------


def _read_json(path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.gfile.GFile(path) as f:
    return json.loads(f.read())


def _exists(path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile.exists(path)


def epoch_record_path(directories, epoch):
  return os.path.join(directories["eval_metrics"], "epoch_%d.json" % epoch)


def rollout_paths(directories, epoch):
  rollouts_dir = os.path.join(directories["data"], "rollouts")
  return {split: os.path.join(rollouts_dir, "epoch_%d-%s.tfrecord" % (epoch, split))
          for split in ("train", "dev")}


def _rng(seed, *keys):
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  return generator_utils.cycle_random_rng(seed, *keys)


def collect_epoch_rollouts(problem, policy, hparams, epoch, directories, random_seed):
  """This epoch's real-environment rollouts, {"train": [...], "dev": [...]}.

  Collected (and written) once; a rerun reads them back, so an epoch's data never changes.
  """
  paths = rollout_paths(directories, epoch)
  if all(_exists(p) for p in paths.values()):
    return {split: rollout_io.read_rollouts(p) for split, p in paths.items()}
  steps = real_env_step_increment(hparams)
  dev_steps = max(1, int(round(steps * float(hparams.dev_fraction))))
  train_steps = max(1, steps - dev_steps)
  env = problem.make_env()
  try:
    rollouts = {
        "train": collect_rollouts(env, policy, train_steps,
                                  rng=_rng(random_seed, "collect", "train", epoch)),
        "dev": collect_rollouts(env, policy, dev_steps,
                                rng=_rng(random_seed, "collect", "dev", epoch)),
    }
  finally:
    env.close()
  for split, path in paths.items():
    rollout_io.write_rollouts(path, rollouts[split])
  return rollouts


def train_world_model(problem, model_name, hparams, data_dir, output_dir, train_steps,
                      eval_steps, schedule="continuous_train_and_eval", random_seed=None):
  """Trains the world model on to `train_steps` with the supervised trainer.

  What `t2t_lite.training.train_supervised` does (a run on an output_dir with checkpoints
  resumes from the newest), through its `Trainer`, so that the trained model is at hand for
  the evaluation.

  Returns:
    (the trainer's eval metrics, {} when the schedule does not evaluate; the trained model).
  """
  from t2t_lite.training import Trainer  # pylint: disable=g-import-not-at-top
  trainer = Trainer(problem, model_name, hparams, data_dir, output_dir, train_steps,
                    random_seed=random_seed, save_checkpoints_steps=0,
                    log_step_count_steps=max(1, train_steps // 10))
  results = trainer.run(schedule, eval_steps=eval_steps)
  return results, trainer.model


def greedy_predict(model, inputs, length, batch_size=64):
  """Greedy next-frame predictions of a seq2seq model: int32 [N, length] target tokens.

  Uses the model's incremental decoding (`encode` / `init_decode_cache` / `decode_step`) when
  it has it, else re-runs the whole model once per position (any teacher-forced model).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  inputs = np.asarray(inputs, dtype=np.int32)
  incremental = all(callable(getattr(model, name, None))
                    for name in ("encode", "init_decode_cache", "decode_step"))

  @tf.function(reduce_retracing=True)
  def decode_cached(batch):
    encoder_output, encoder_mask = model.encode(batch, training=False)
    cache = model.init_decode_cache(tf.shape(batch)[0], length, encoder_output, encoder_mask)
    ids = tf.zeros([tf.shape(batch)[0]], tf.int32)
    outputs = tf.TensorArray(tf.int32, size=length)
    for i in tf.range(length):
      logits, cache = model.decode_step(ids, cache, i)
      ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
      outputs = outputs.write(i, ids)
    return tf.transpose(outputs.stack())

  def decode_full(batch):
    targets = np.zeros([len(batch), length], dtype=np.int32)
    for i in range(length):
      logits = model({"inputs": batch, "targets": targets}, training=False)
      targets[:, i] = np.argmax(np.asarray(logits)[:, i], axis=-1)
    return targets

  outputs = []
  for start in range(0, len(inputs), batch_size):
    batch = inputs[start:start + batch_size]
    if incremental:
      outputs.append(decode_cached(tf.constant(batch)).numpy())
    else:
      outputs.append(decode_full(batch))
  if not outputs:
    return np.zeros([0, length], dtype=np.int32)
  return np.concatenate(outputs).astype(np.int32)


def _render(frame, chars=".o=#*"):
  return ["".join(chars[v] if 0 <= v < len(chars) else "?" for v in row) for row in frame]


def write_debug_video(path, tokenizer, inputs, targets, predictions, num_examples):
  """Draws a few held-out examples as text: input frames | true next | predicted next."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  k, size = tokenizer.frame_stack_size, tokenizer.frame_size
  shape = tokenizer.observation_shape
  if len(shape) != 2:
    return None
  lines = ["# input frames (oldest first) | true next frame | predicted next frame",
           "# pixel values: 0 '.', 1 'o', 2 '=', 3 '#', 4 '*', anything else '?'"]
  for n in range(min(num_examples, len(inputs))):
    frames = [np.asarray(inputs[n][i * size:(i + 1) * size]) - 2 for i in range(k)]
    frames = [_render(f.reshape(shape)) for f in frames]
    true_frame, true_reward = tokenizer.decode_targets(targets[n])
    pred_frame, pred_reward = tokenizer.decode_targets(predictions[n])
    action = int(inputs[n][k * size]) - tokenizer.action_offset
    lines.append("")
    lines.append("example %d: action %d, reward %s, predicted reward %s" %
                 (n, action, true_reward, pred_reward))
    columns = frames + [_render(true_frame), _render(pred_frame)]
    for row in range(shape[0]):
      lines.append(" | ".join(c[row] for c in columns))
  with tf.io.gfile.GFile(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def evaluate_world_model(problem, model, rollouts, hparams, rng, debug_video_path=None):
  """Scores the world model's greedy predictions on random held-out windows.

  Returns:
    `world_model_metrics`: next_frame_error, frame_accuracy, reward_accuracy, num_examples.
  """
  tokenizer = problem.tokenizer
  windows = random_rollout_subsequences(rollouts, int(hparams.eval_num_subsequences),
                                        tokenizer.window_length, rng=rng,
                                        weight_by_windows=True)
  inputs, targets = tokenizer.encode_windows(windows)
  predictions = greedy_predict(model, inputs, tokenizer.targets_length,
                               batch_size=int(hparams.eval_batch_size))
  metrics = tokenizer.metrics(predictions, targets)
  if debug_video_path and int(hparams.debug_video_examples) > 0:
    write_debug_video(debug_video_path, tokenizer, inputs, targets, predictions,
                      int(hparams.debug_video_examples))
  return metrics


def make_log_fn(epoch, log_relative_time):
  """`log(msg, *args)`: logs `>>>>>>> Epoch N: msg` with the time since the start."""

  def log(msg, *args):
    text = ">>>>>>> Epoch %d: %s" % (epoch, msg % args if args else msg)
    log_relative_time(text)

  return log


def _to_json_number(value):
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (np.floating, float)):
    return float(value)
  return value


# --- the loop ------------------------------------------------------------------------------


def save_or_check_loop_hparams(output_dir, hparams, overwrite=False):
  """Writes output_dir/loop_hparams.json, or checks `hparams` against the one there.

  Raises:
    ConfigError: the saved loop hparams differ (and not `overwrite`): the finished epochs
      there were run with other settings.
  """
  path = os.path.join(output_dir, "loop_hparams.json")
  values = {k: _to_json_number(v) for k, v in hparams.values().items()}
  if _exists(path) and not overwrite:
    saved = _read_json(path)
    diffs = ["%s: saved %r, new %r" % (k, saved.get(k), values.get(k))
             for k in sorted(set(saved) | set(values)) if saved.get(k) != values.get(k)]
    if diffs:
      raise ConfigError("the loop hparams differ from the ones saved in %s: %s. Use another "
                        "--output_dir, or pass --overwrite_output_hparams to go on with the new "
                        "ones (finished epochs are kept as they are)." % (path, "; ".join(diffs)))
    return
  write_json_atomically(path, values)


def training_loop(hparams, output_dir, random_seed=None, train_fn=None,
                  overwrite_hparams=False):
  """Runs the model-based loop (see the module docstring).

  Args:
    hparams: the loop HParams (e.g. `registry.hparams("rlmb_base")` with overrides).
    output_dir: where everything goes: data/, tmp/, world_model/ (and debug_videos/),
      policy/, eval_metrics/ and loop_hparams.json.
    random_seed: seeds collection, training and evaluation (None: seed 0 for the data, and
      unseeded training).
    train_fn: replaces `train_world_model` (same signature; for tests and experiments).
    overwrite_hparams: go on even if output_dir's loop_hparams.json holds other hparams.

  Returns:
    The per-epoch records (dicts, as in eval_metrics/epoch_N.json), every epoch of the run,
    the skipped finished ones included.

  Raises:
    ConfigError: hparams that cannot work, a problem that is not a world-model problem, or
      an output_dir run with other loop hparams.
  """
  from t2t_lite.rl import world_model_problem  # pylint: disable=g-import-not-at-top
  check_loop_hparams(hparams)
  problem = registry.problem(hparams.problem)
  if (not isinstance(problem, world_model_problem.WorldModelProblem) or problem.was_reversed
      or problem.was_copy):
    raise ConfigError("problem=%s is not a world-model problem (a t2t_lite.rl."
                      "WorldModelProblem); the model-based loop needs one, e.g. "
                      "world_model_bouncing_ball." % hparams.problem)
  model_hparams = world_model_hparams(hparams)
  train_fn = train_fn or train_world_model
  directories = setup_directories(output_dir, SUBDIRECTORIES)
  log_relative_time = make_relative_timing_fn()
  save_or_check_loop_hparams(output_dir, hparams, overwrite=overwrite_hparams)
  seed = 0 if random_seed is None else int(random_seed)
  policy = make_policy(hparams.policy, problem.env, policy_dir=directories["policy"])
  step_increment = real_env_step_increment(hparams)
  log_relative_time("Model-based loop: %d epochs of %d real steps on %s, world model %s (%s)"
                    % (hparams.epochs, step_increment, problem.name, hparams.world_model,
                       hparams.world_model_hparams_set))

  records = []
  all_rollouts = {"train": [], "dev": []}
  for epoch in range(int(hparams.epochs)):
    log = make_log_fn(epoch, log_relative_time)
    record_path = epoch_record_path(directories, epoch)
    if _exists(record_path):
      record = _read_json(record_path)
      log("already finished (%s); skipping it", record_path)
      for split, path in rollout_paths(directories, epoch).items():
        if _exists(path):
          all_rollouts[split].extend(rollout_io.read_rollouts(path))
      records.append(record)
      continue

    log("collecting %d real environment steps with the %s policy", step_increment,
        hparams.policy)
    rollouts = collect_epoch_rollouts(problem, policy, hparams, epoch, directories, seed)
    for split in ("train", "dev"):
      all_rollouts[split].extend(rollouts[split])
    mean_reward = compute_mean_reward(rollouts["train"] + rollouts["dev"])
    log("collected %d rollouts (%d frames); mean reward of finished episodes %.3f",
        len(rollouts["train"]) + len(rollouts["dev"]),
        num_frames(rollouts["train"]) + num_frames(rollouts["dev"]), mean_reward)

    # Each epoch's examples go to their own folder, and earlier ones are kept: the world
    # model's checkpoint holds its data iterator, which finishes the file it was reading
    # before it moves on to this epoch's files.
    epoch_data_dir = os.path.join(directories["data"], "epoch_%d" % epoch)
    counts = problem.generate_data_from_rollouts(epoch_data_dir, all_rollouts["train"],
                                                 all_rollouts["dev"])
    log("wrote %d train and %d dev world-model examples to %s", counts["train"],
        counts["dev"], epoch_data_dir)

    train_steps = int(hparams.world_model_train_steps) * (epoch + 1)
    log("training the world model to step %d", train_steps)
    train_metrics, model = train_fn(problem, hparams.world_model, model_hparams,
                                    epoch_data_dir, directories["world_model"], train_steps,
                                    int(hparams.world_model_eval_steps),
                                    schedule=hparams.world_model_schedule,
                                    random_seed=random_seed)

    log("evaluating the world model on %d held-out windows", hparams.eval_num_subsequences)
    try:
      metrics = evaluate_world_model(
          problem, model, all_rollouts["dev"], hparams, rng=_rng(seed, "eval", epoch),
          debug_video_path=os.path.join(directories[("world_model", "debug_videos")],
                                        "epoch_%d.txt" % epoch))
    except ValueError as e:
      raise ConfigError("epoch %d: cannot evaluate the world model: %s Raise "
                        "num_real_env_frames or dev_fraction." % (epoch, e)) from None
    log("world model: next_frame_error %.4f, frame_accuracy %.4f, reward_accuracy %.4f",
        metrics["next_frame_error"], metrics["frame_accuracy"], metrics["reward_accuracy"])

    record = {
        "epoch": epoch,
        "real_env_steps": step_increment * (epoch + 1),
        "mean_reward": mean_reward,
        "world_model": metrics,
        "world_model_train": {k: _to_json_number(v) for k, v in (train_metrics or {}).items()},
        "world_model_train_steps": train_steps,
        "examples": counts,
        "timing": log_relative_time(),
    }
    write_json_atomically(record_path, record)
    log("finished; recorded in %s", record_path)
    records.append(record)
  return records
