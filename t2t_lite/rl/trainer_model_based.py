"""The model-based RL loop: collect real experience, train a world model on it, evaluate it.

    from t2t_lite.rl import trainer_model_based as tmb
    hparams = registry.hparams("rlmb_base")
    records = tmb.training_loop(hparams, "/tmp/rl_run", random_seed=1)
    records[-1]["world_model"]["next_frame_error"]

or from the command line (`t2t_lite/bin/trainer_model_based.py`):

    t2t-trainer-model-based --output_dir=~/t2t_rl/bouncing_ball --epochs=3 \\
        --num_real_env_frames=6000 --loop_hparams_set=rlmb_base

The loop hparams (`hparams.problem`, a registered WorldModelProblem, overridden by
`training_loop(problem=...)` / `--problem`; the world model and its hparams set; the sizes
below) and their sets (rlmb_base, rlmb_tiny, rlmb_small) are in `t2t_lite.rl.loop_hparams`.
They are saved in OUTPUT_DIR/loop_hparams.json, and the world model's in
OUTPUT_DIR/world_model/hparams.json; a rerun with other ones is an error.

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
   reward greedily (`t2t_lite.decoding.decode_ids` with the model's cache) and
   reports `next_frame_error` (pixel tokens wrong), `frame_accuracy` and `reward_accuracy`;
   a few predictions are drawn into `world_model/debug_videos/epoch_N.txt`;
4. records the epoch in `eval_metrics/epoch_N.json` (written atomically). A rerun on the same
   output_dir skips every epoch that has its record, so an interrupted run continues.

Every step is logged with the time since the start (`Timing: H:MM:SS.ffffff`).
"""
import json
import os

import numpy as np

from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.errors import ConfigError
from t2t_lite.rl import rollout_io
from t2t_lite.rl.envs import collect_rollouts
from t2t_lite.rl.loop_hparams import (check_loop_hparams, save_or_check_loop_hparams,
                                      world_model_hparams)
from t2t_lite.rl.policies import make_policy
from t2t_lite.rl.rollouts import (compute_mean_reward, num_frames, random_rollout_subsequences,
                                  real_env_step_increment)
from t2t_lite.utils import atomic_write, make_relative_timing_fn, setup_directories

SUBDIRECTORIES = ("data", "tmp", "world_model", ("world_model", "debug_videos"), "policy",
                  "eval_metrics")


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


def predict_greedily(model, inputs, length, batch_size=64):
  """The world model's greedy predictions: int32 [N, length] target tokens.

  `t2t_lite.decoding.decode_ids` (greedy, with the model's cache, as t2t-decoder decodes)
  with eos_id=None, so every row runs all `length` positions: a world model's targets have a
  fixed length. The inputs have no padding, so `extra_length = length - their width` (at most
  0: the input frames are longer than one target frame) makes each row exactly `length` long.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from t2t_lite.decoding import decoder  # pylint: disable=g-import-not-at-top

  inputs = np.asarray(inputs, dtype=np.int32)
  extra_length = int(length) - inputs.shape[1]

  @tf.function(reduce_retracing=True, autograph=False)
  def decode(batch):
    result = decoder.decode_ids(model, batch, beam_size=1, extra_length=extra_length,
                                eos_id=None)
    return result["outputs"][:, 0, :]

  outputs = [decode(tf.constant(inputs[start:start + batch_size])).numpy()
             for start in range(0, len(inputs), batch_size)]
  return np.concatenate(outputs) if outputs else np.zeros([0, length], dtype=np.int32)


def _render(frame, chars=".o=#*"):
  return ["".join(chars[v] if 0 <= v < len(chars) else "?" for v in row) for row in frame]


def write_debug_video(path, tokenizer, inputs, targets, predictions, num_examples):
  """Draws a few held-out examples as text: input frames | true next | predicted next."""
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
  atomic_write.write_lines_atomically(path, lines)
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
  predictions = predict_greedily(model, inputs, tokenizer.targets_length,
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


def check_world_model_problem(name):
  """The registered WorldModelProblem `name`.

  Raises:
    ConfigError: `name` is not a world-model problem (UnknownNameError: not registered).
  """
  from t2t_lite.rl import world_model_problem as wmp  # pylint: disable=g-import-not-at-top
  problem = registry.problem(name)
  if not isinstance(problem, wmp.WorldModelProblem) or problem.was_reversed or problem.was_copy:
    raise ConfigError("problem=%s is not a world-model problem (a t2t_lite.rl."
                      "WorldModelProblem); the model-based loop needs one, e.g. "
                      "world_model_bouncing_ball." % name)
  return problem


def check_world_model(model_name):
  """Raises ConfigError unless the model `model_name` can predict frames greedily: the
  decoding interface `decoding.check_decodable` asks of its class (encode, since the
  world-model problems have inputs, init_decode_cache and decode_step); checked before any
  work."""
  from t2t_lite.decoding import decoder  # pylint: disable=g-import-not-at-top
  try:
    decoder.check_decodable(registry.model(model_name))
  except ConfigError as e:
    # Given a class, check_decodable's message names `type`; what follows its ": " is the
    # reason ("it has no encode, ...").
    reason = str(e).partition(": ")[2] or str(e)
    raise ConfigError("world_model=%s cannot predict frames: %s" % (model_name, reason)) from None


def training_loop(hparams, output_dir, random_seed=None, train_fn=None,
                  overwrite_hparams=False, problem=None):
  """Runs the model-based loop (see the module docstring).

  Args:
    hparams: the loop HParams (e.g. `registry.hparams("rlmb_base")` with overrides).
    output_dir: where everything goes (a leading `~` is the home folder): data/, tmp/,
      world_model/ (and debug_videos/ and hparams.json), policy/, eval_metrics/ and
      loop_hparams.json.
    random_seed: seeds collection, training and evaluation (None: seed 0 for the data, and
      unseeded training).
    train_fn: replaces `train_world_model` (same signature; for tests and experiments).
    overwrite_hparams: go on even if output_dir's loop_hparams.json (or the world model's
      hparams.json) holds other hparams.
    problem: a registered WorldModelProblem's name, in place of `hparams.problem` (None: the
      set's); it is recorded in loop_hparams.json.

  Returns:
    The per-epoch records (dicts, as in eval_metrics/epoch_N.json), every epoch of the run,
    the skipped finished ones included.

  Raises:
    ConfigError: hparams that cannot work, a problem that is not a world-model problem, a
      model that cannot decode, or an output_dir run with other hparams.
  """
  if problem is not None:
    hparams = hparams.copy()
    hparams.set_hparam("problem", problem)
  check_loop_hparams(hparams)
  problem = check_world_model_problem(hparams.problem)
  check_world_model(hparams.world_model)
  model_hparams = world_model_hparams(hparams)
  train_fn = train_fn or train_world_model
  output_dir = os.path.expanduser(output_dir)
  directories = setup_directories(output_dir, SUBDIRECTORIES)
  log_relative_time = make_relative_timing_fn()
  save_or_check_loop_hparams(output_dir, hparams, overwrite=overwrite_hparams)
  output_dir_lib.save_or_check_hparams(directories["world_model"], model_hparams,
                                       overwrite=overwrite_hparams)
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
    atomic_write.write_json_atomically(record_path, record)
    log("finished; recorded in %s", record_path)
    records.append(record)
  return records
