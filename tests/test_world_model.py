"""World-model problems: the token encoding, the metrics, data generation and batches."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import problems.world_model as world_model_problems
from t2t_lite import registry
from t2t_lite.hparams import HParams
from t2t_lite.rl import rollout_io
from t2t_lite.rl.envs import BouncingBallEnv, collect_rollouts
from t2t_lite.rl.policies import RandomPolicy
from t2t_lite.rl.rollouts import Frame
from t2t_lite.rl.world_model import EOS_ID, FrameTokenizer, world_model_metrics


def tiny_tokenizer():
  return FrameTokenizer((2, 3), num_observation_values=3, num_actions=3, reward_range=(-1, 1),
                        frame_stack_size=2)


def test_tokenizer_layout():
  tok = tiny_tokenizer()
  assert tok.vocab_size == 2 + 3 + 3 + 3
  frames = [Frame(np.array([[0, 1, 2], [2, 1, 0]]), 0, 0, False),
            Frame(np.array([[1, 1, 1], [0, 0, 0]]), 2, 0, False),
            Frame(np.array([[2, 2, 2], [1, 0, 1]]), 0, -1, True)]
  ex = tok.encode_window(frames)
  assert ex["inputs"] == [2, 3, 4, 4, 3, 2, 3, 3, 3, 2, 2, 2, 5 + 2, EOS_ID]
  assert ex["targets"] == [4, 4, 4, 3, 2, 3, 8 + 0, EOS_ID]
  assert len(ex["inputs"]) == tok.inputs_length and len(ex["targets"]) == tok.targets_length
  frame, reward = tok.decode_targets(ex["targets"])
  assert np.array_equal(frame, frames[2].observation) and reward == -1
  frame, reward = tok.decode_targets([0, 9, 4])  # short, and wrong kinds of tokens
  assert frame.tolist() == [[-1, -1, 2], [-1, -1, -1]] and reward is None
  with pytest.raises(ValueError, match="3 frames"):
    tok.encode_window(frames[:2])
  with pytest.raises(ValueError, match="shape"):
    tok.encode_frame(np.zeros((3, 2)))
  with pytest.raises(ValueError, match="values"):
    tok.encode_frame(np.full((2, 3), 3))


def test_world_model_metrics():
  targets = np.array([[2, 3, 4, 9, 1, 0],
                      [4, 4, 4, 10, 1, 0]])
  assert world_model_metrics(targets, targets, 3) == {
      "next_frame_error": 0.0, "frame_accuracy": 1.0, "reward_accuracy": 1.0, "num_examples": 2}
  predictions = np.array([[2, 3, 2, 9, 1, 0, 0],   # one pixel wrong, reward right
                          [4, 4, 4, 9, 1, 0, 0]])  # frame right, reward wrong (a longer array)
  m = world_model_metrics(predictions, targets, 3)
  assert m["next_frame_error"] == pytest.approx(1 / 6)
  assert m["frame_accuracy"] == 0.5 and m["reward_accuracy"] == 0.5
  m = world_model_metrics(np.array([[2], [4]]), targets, 3)  # too short: missing = wrong
  assert m["next_frame_error"] == pytest.approx(4 / 6) and m["reward_accuracy"] == 0.0
  assert world_model_metrics(np.zeros((0, 4)), np.zeros((0, 4)), 3)["num_examples"] == 0
  with pytest.raises(ValueError, match="same N"):
    world_model_metrics(targets[:1], targets, 3)


def test_problems_are_registered():
  assert isinstance(registry.problem("world_model_bouncing_ball"),
                    world_model_problems.WorldModelBouncingBall)
  big = registry.problem("world_model_bouncing_ball")
  tiny = registry.problem("world_model_bouncing_ball_tiny")
  assert big.env.observation_shape == (8, 8) and tiny.env.observation_shape == (4, 4)
  assert big.tokenizer.inputs_length == 2 * 64 + 2 and tiny.tokenizer.targets_length == 18
  hp = tiny.get_hparams()
  assert hp.vocab_size == {"inputs": 11, "targets": 11}
  assert hp.modality == {"inputs": "symbol", "targets": "symbol"}


def test_generate_data_writes_rollouts_and_shards(tmp_path):
  problem = registry.problem("world_model_bouncing_ball_tiny")
  problem.num_train_steps, problem.num_dev_steps = 120, 30  # instance attributes: this test
  data_dir, tmp_dir = str(tmp_path / "data"), str(tmp_path / "tmp")
  problem.generate_data(data_dir, tmp_dir)
  assert problem.data_exists(data_dir)
  counts = problem.check_shards(data_dir)
  train_rollouts = rollout_io.read_rollouts(problem.rollouts_path(tmp_dir, "train"))
  dev_rollouts = rollout_io.read_rollouts(problem.rollouts_path(tmp_dir, "dev"))
  assert sum(len(r) - 1 for r in train_rollouts) == 120  # one step per frame after the first
  window = problem.tokenizer.window_length
  assert counts == {"train": sum(max(0, len(r) - window + 1) for r in train_rollouts),
                    "dev": sum(max(0, len(r) - window + 1) for r in dev_rollouts)}

  # The rollouts in tmp_dir are reused: the same data again.
  before = sorted(os.listdir(data_dir))
  problem.generate_data(str(tmp_path / "data2"), tmp_dir)
  assert problem.check_shards(str(tmp_path / "data2")) == counts
  assert sorted(os.listdir(str(tmp_path / "data2"))) == before


def test_dataset_batches_have_the_encoded_shapes(tmp_path):
  problem = registry.problem("world_model_bouncing_ball_tiny")
  env = BouncingBallEnv(4, 4)
  rollouts = collect_rollouts(env, RandomPolicy(3), 60, rng=0)
  counts = problem.generate_data_from_rollouts(str(tmp_path), rollouts, rollouts[:3])
  assert counts["train"] > 0 and counts["dev"] > 0
  # A partial HParams takes the batching defaults; max_length is below the examples' length.
  hparams = HParams(batch_size=256, max_length=16)
  batch = next(iter(problem.dataset("train", str(tmp_path), hparams)))
  inputs, targets = batch["inputs"].numpy(), batch["targets"].numpy()
  tok = problem.tokenizer
  assert inputs.shape[1] >= tok.inputs_length and targets.shape[1] >= tok.targets_length
  assert inputs.dtype == np.int32
  assert (inputs[:, tok.inputs_length - 1] == EOS_ID).all()
  assert (targets[:, tok.targets_length - 1] == EOS_ID).all()
  assert (inputs[:, tok.inputs_length:] == 0).all() and (targets[:, tok.targets_length:] == 0).all()
  assert ((inputs[:, :tok.inputs_length - 2] >= 2) & (inputs[:, :tok.inputs_length - 2] < 5)).all()
  actions = inputs[:, tok.inputs_length - 2]
  assert ((actions >= tok.action_offset) & (actions < tok.reward_offset)).all()
  rewards = targets[:, tok.targets_length - 2]
  assert ((rewards >= tok.reward_offset) & (rewards < tok.vocab_size)).all()


def test_gymnasium_problem_factory_with_a_fake_gymnasium(monkeypatch):
  """The optional gymnasium path, against a stand-in module (gymnasium is not required)."""

  class Discrete:
    def __init__(self, n):
      self.n = n

  class Box:
    pass

  class FakeEnv:
    action_space = Discrete(2)
    observation_space = Discrete(5)

    def reset(self, seed=None):
      self.state = 0
      return 0, {}

    def step(self, action):
      self.state = min(4, self.state + action)
      return self.state, 2.7 if self.state == 4 else 0.0, self.state == 4, False, {}

    def close(self):
      pass

  fake = types.SimpleNamespace(spaces=types.SimpleNamespace(Discrete=Discrete, Box=Box),
                               make=lambda env_id, **kw: FakeEnv())
  monkeypatch.setitem(sys.modules, "gymnasium", fake)
  cls = world_model_problems.make_gymnasium_world_model_problem("FakeWalk-v0")
  try:
    assert cls.REGISTERED_NAME == "world_model_gym_fake_walk_v0"
    problem = registry.problem("world_model_gym_fake_walk_v0")
    env = problem.make_env()
    assert env.num_actions == 2 and env.observation_shape == (1,)
    rollouts = collect_rollouts(env, RandomPolicy(2), 30, rng=0)
    assert {f.reward for r in rollouts for f in r} <= {0, 1}  # rounded and clipped to (-1, 1)
    example = problem.tokenizer.encode_window(rollouts[0][:3]) if len(rollouts[0]) >= 3 else None
    assert example is None or len(example["inputs"]) == 2 + 2
  finally:
    registry.unregister("problem", "world_model_gym_fake_walk_v0")


def test_importing_problems_surfaces_a_broken_world_model_module(script_env):
  # Nothing the world-model problems import is optional, so an ImportError there is a bug to
  # be reported, never a reason to register the other problems without them.
  code = """
import importlib.abc, sys
class Broken(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name == "t2t_lite.rl.world_model_problem":
      raise ImportError("world_model_problem broken on purpose")
sys.meta_path.insert(0, Broken())
import problems
"""
  proc = subprocess.run([sys.executable, "-c", code], env=script_env, capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode != 0
  assert "world_model_problem broken on purpose" in proc.stderr
