"""t2t_lite.rl: rollouts, environments, policies, world-model problems and the model-based loop.

    from t2t_lite import rl
    rl.real_env_step_increment(hparams)                       # ceil(num_real_env_frames / epochs)
    rl.random_rollout_subsequences(rollouts, 64, 3, rng=0)    # random windows of 3 frames
    rl.collect_rollouts(rl.BouncingBallEnv(4, 4), rl.RandomPolicy(3), 100, rng=0)
    rl.training_loop(registry.hparams("rlmb_tiny"), "/tmp/rlmb", random_seed=1)

Modules:

- `rollouts`: `Frame`, the rollout convention, `real_env_step_increment`,
  `random_rollout_subsequences`, `rollout_windows`, `compute_mean_reward`.
- `envs`: the environment interface, `BouncingBallEnv`, `GymnasiumEnv`, `collect_rollouts`.
- `policies`: `Policy`, `RandomPolicy`, `register_policy`, `make_policy`.
- `rollout_io`: rollouts in TFRecord files.
- `world_model`: `FrameTokenizer` (frames, actions and rewards as tokens) and
  `world_model_metrics`.
- `world_model_problem`: `WorldModelProblem`, the Problem base class of world models.
- `loop_hparams`: the loop's hparams sets (rlmb_base, rlmb_tiny, rlmb_small), their checks
  and the world model's hparams.
- `trainer_model_based`: the loop (`training_loop`).

Importing this package does not import TensorFlow; `WorldModelProblem` (which does) is loaded
on first use.
"""
from t2t_lite.rl import loop_hparams  # registers the rlmb_* hparams sets
from t2t_lite.rl import trainer_model_based
from t2t_lite.rl.envs import BouncingBallEnv, Env, GymnasiumEnv, collect_rollouts
from t2t_lite.rl.policies import (ConstantPolicy, Policy, RandomPolicy, list_policies,
                                  make_policy, register_policy)
from t2t_lite.rl.rollouts import (Frame, Rollout, compute_mean_reward,
                                  random_rollout_subsequences, real_env_step_increment,
                                  rollout_windows)
from t2t_lite.rl.trainer_model_based import training_loop
from t2t_lite.rl.world_model import FrameTokenizer, world_model_metrics

__all__ = [
    "BouncingBallEnv", "ConstantPolicy", "Env", "Frame", "FrameTokenizer", "GymnasiumEnv",
    "Policy", "RandomPolicy", "Rollout", "WorldModelProblem", "collect_rollouts",
    "compute_mean_reward", "list_policies", "loop_hparams", "make_policy",
    "random_rollout_subsequences", "real_env_step_increment", "register_policy",
    "rollout_windows", "trainer_model_based", "training_loop", "world_model_metrics",
]


def __getattr__(name):
  if name == "WorldModelProblem":
    from t2t_lite.rl import world_model_problem  # pylint: disable=g-import-not-at-top
    return world_model_problem.WorldModelProblem
  raise AttributeError("module 't2t_lite.rl' has no attribute %r" % name)
