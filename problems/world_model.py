"""World-model problems: learn an environment's next frame and reward from frames and an action.

    t2t-datagen --problem=world_model_bouncing_ball --data_dir=~/t2t_data
    t2t-trainer --problem=world_model_bouncing_ball --model=transformer \\
        --hparams_set=transformer_tiny --data_dir=~/t2t_data --output_dir=~/t2t_train/wm

or, the whole model-based loop (collect, train, evaluate, epoch after epoch):

    t2t-trainer-model-based --output_dir=~/t2t_rl/bouncing_ball --epochs=3

Each example is one environment step written as tokens (`t2t_lite.rl.world_model`): the
last `frame_stack_size` frames and the action -> the next frame and the reward.

- `world_model_bouncing_ball`: `BouncingBallEnv` on an 8x8 grid (actions move a paddle; +1
  for a hit, -1 and the episode ends for a miss). Deterministic, no gym needed.
- `world_model_bouncing_ball_tiny`: the same on a 4x4 grid (tests, smoke runs).
- `make_gymnasium_world_model_problem("FrozenLake-v1")`: registers a problem on a gymnasium
  env with discrete observations and actions (needs `pip install gymnasium`).
"""
from t2t_lite import registry
from t2t_lite.rl.envs import BouncingBallEnv, GymnasiumEnv
from t2t_lite.rl.world_model_problem import WorldModelProblem


@registry.register_problem
class WorldModelBouncingBall(WorldModelProblem):
  """A ball bouncing in an 8x8 grid with a paddle on the bottom row (see `BouncingBallEnv`).

  Inputs: 2 frames of 64 pixels and the action (130 tokens with EOS); targets: the next
  frame and the reward (66 tokens with EOS); vocabulary 11.
  """

  height = 8
  width = 8
  paddle_width = None  # BouncingBallEnv's default
  max_episode_steps = 100

  def make_env(self):
    return BouncingBallEnv(self.height, self.width, paddle_width=self.paddle_width,
                           max_episode_steps=self.max_episode_steps)


@registry.register_problem
class WorldModelBouncingBallTiny(WorldModelBouncingBall):
  """`world_model_bouncing_ball` on a 4x4 grid: 34 input and 18 target tokens."""

  height = 4
  width = 4
  max_episode_steps = 50
  num_train_steps = 1000
  num_dev_steps = 200


def make_gymnasium_world_model_problem(env_id, name=None, reward_range=(-1, 1), **make_kwargs):
  """Registers (and returns) a world-model problem on the gymnasium env `env_id`.

  Args:
    env_id: a gymnasium id with Discrete actions and discrete observations.
    name: the problem name; default `world_model_gym_<env id in snake case>`.
    reward_range: (low, high) ints rewards are rounded and clipped to.
    **make_kwargs: passed to `gymnasium.make`.
  """
  if name is None:
    name = "world_model_gym_" + registry.default_name(
        env_id.replace("-", "_").replace("/", "_")).replace("__", "_")

  class WorldModelGymnasium(WorldModelProblem):

    def make_env(self):
      return GymnasiumEnv(env_id, reward_range=reward_range, **make_kwargs)

  WorldModelGymnasium.__name__ = WorldModelGymnasium.__qualname__ = (
      "WorldModelGymnasium_" + name)
  return registry.register_problem(name)(WorldModelGymnasium)
