"""`WorldModelProblem`: a Problem whose examples are environment steps (see world_model.py).

A subclass says which environment it learns (`make_env`); the base class collects rollouts,
turns every window of `frame_stack_size + 1` consecutive frames into one example with
`FrameTokenizer`, and writes them as ordinary sharded TFRecords, so `t2t-trainer` and the
model-based loop train the stock transformer on it.

    @registry.register_problem
    class WorldModelMyGrid(WorldModelProblem):
      def make_env(self):
        return MyGridEnv()

    t2t-datagen --problem=world_model_my_grid --data_dir=D   # random-policy rollouts -> shards

Raw rollouts live in tmp_dir (`<problem>-rollouts-{train,dev}.tfrecord`, see
`t2t_lite.rl.rollout_io`); `generate_data` collects them there with a random policy when they
are missing, then writes the examples into data_dir. The model-based loop collects its own
rollouts and calls `generate_data_from_rollouts`.
"""
import os

from t2t_lite.data import generator_utils
from t2t_lite.data.problem import Problem
from t2t_lite.rl import rollout_io
from t2t_lite.rl.envs import collect_rollouts
from t2t_lite.rl.policies import RandomPolicy
from t2t_lite.rl.rollouts import rollout_windows
from t2t_lite.rl.world_model import FrameTokenizer


class WorldModelProblem(Problem):
  """Base class of world-model problems.

  Class attributes a subclass may set:
    frame_stack_size: input frames per example (2 lets a model see velocities).
    num_train_steps, num_dev_steps: environment steps `generate_data` collects per split.
    num_train_shards: train shards written (dev gets one).
  """

  frame_stack_size = 2
  num_train_steps = 5000
  num_dev_steps = 500
  num_train_shards = 2

  def __init__(self, was_reversed=False, was_copy=False):
    super().__init__(was_reversed=was_reversed, was_copy=was_copy)
    self._env = None
    self._tokenizer = None

  # -- the environment -----------------------------------------------------------------

  def make_env(self):
    """A new environment (see `t2t_lite.rl.envs`)."""
    raise NotImplementedError("%s must implement make_env()" % type(self).__name__)

  @property
  def env(self):
    """The environment this problem's tokenizer describes (made once)."""
    if self._env is None:
      self._env = self.make_env()
    return self._env

  @property
  def tokenizer(self):
    if self._tokenizer is None:
      env = self.env
      self._tokenizer = FrameTokenizer(env.observation_shape, env.num_observation_values,
                                       env.num_actions, env.reward_range,
                                       frame_stack_size=self.frame_stack_size)
    return self._tokenizer

  # -- Problem hooks -------------------------------------------------------------------

  def hparams(self, defaults, model_hparams):
    del model_hparams
    vocab = self.tokenizer.vocab_size
    defaults.vocab_size["inputs"] = vocab
    defaults.vocab_size["targets"] = vocab
    defaults.modality["inputs"] = "symbol"
    defaults.modality["targets"] = "symbol"

  def dataset_splits(self):
    return [{"split": "train", "shards": self.num_train_shards}, {"split": "dev", "shards": 1}]

  def eval_metrics(self):
    return ["accuracy", "accuracy_per_sequence", "neg_log_perplexity"]

  def max_length(self, model_hparams):
    # Every example has the same length; never let a small max_length drop them all.
    return max(super().max_length(model_hparams), self.tokenizer.inputs_length)

  # -- data ------------------------------------------------------------------------------

  def rollouts_path(self, tmp_dir, split):
    return os.path.join(tmp_dir, "%s-rollouts-%s.tfrecord" % (self.dataset_filename(), split))

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    """Collects random-policy rollouts into tmp_dir (unless there), then writes the examples."""
    del task_id
    rollouts = {}
    for split, steps, salt in (("train", self.num_train_steps, 1),
                               ("dev", self.num_dev_steps, 2)):
      path = self.rollouts_path(tmp_dir, split)
      if _exists(path):
        rollouts[split] = rollout_io.read_rollouts(path)
      else:
        rng = generator_utils.cycle_random_rng(self.random_seed, self.dataset_filename(), salt)
        rollouts[split] = collect_rollouts(self.make_env(), RandomPolicy(self.env.num_actions),
                                           steps, rng=rng)
        rollout_io.write_rollouts(path, rollouts[split])
    self.generate_data_from_rollouts(data_dir, rollouts["train"], rollouts["dev"])

  def examples_from_rollouts(self, rollouts):
    """Yields one `{"inputs", "targets"}` dict per window of the rollouts, in order."""
    tokenizer = self.tokenizer
    for window in rollout_windows(rollouts, tokenizer.window_length):
      yield tokenizer.encode_window(window)

  def generate_data_from_rollouts(self, data_dir, train_rollouts, dev_rollouts,
                                  overwrite=True):
    """Writes the examples of the rollouts as this problem's train and dev shards.

    Returns:
      {"train": examples written, "dev": examples written}.
    """
    counts = {}
    for split, rollouts in (("train", train_rollouts), ("dev", dev_rollouts)):
      shards = self.num_train_shards if split == "train" else 1
      paths = generator_utils.shard_paths(data_dir, self.dataset_filename(), split, shards)
      counts[split] = generator_utils.generate_files(
          self.examples_from_rollouts(rollouts), paths, skip_existing=not overwrite)
    return counts


def _exists(path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile.exists(path)
