"""t2t_lite.rl: step increments, rollout subsequences, the built-in env, policies, rollout files."""
import collections
import sys

import numpy as np
import pytest

from t2t_lite.errors import UnknownNameError
from t2t_lite.hparams import HParams
from t2t_lite.rl import policies
from t2t_lite.rl.envs import BouncingBallEnv, collect_rollouts
from t2t_lite.rl.rollouts import (Frame, compute_mean_reward, random_rollout_subsequences,
                                  real_env_step_increment, rollout_windows)


def numbered_rollout(rollout_id, length):
  """A rollout whose frames say where they come from: observation = [rollout_id, index]."""
  return [Frame(np.array([rollout_id, t]), 0, 0, t == length - 1) for t in range(length)]


# --- real_env_step_increment ------------------------------------------------------------------


@pytest.mark.parametrize("frames, epochs, expected", [
    (100, 1, 100), (100, 3, 34), (99, 3, 33), (1, 5, 1), (10, 4, 3), (0, 2, 0)])
def test_step_increment_is_ceil_of_frames_over_epochs(frames, epochs, expected):
  hp = HParams(num_real_env_frames=frames, epochs=epochs)
  assert real_env_step_increment(hp) == expected
  assert real_env_step_increment(hp) * epochs >= frames


@pytest.mark.parametrize("epochs", [0, -1])
def test_step_increment_rejects_non_positive_epochs(epochs):
  with pytest.raises(ValueError, match="epochs must be positive"):
    real_env_step_increment(HParams(num_real_env_frames=100, epochs=epochs))


# --- random_rollout_subsequences --------------------------------------------------------------


def test_subsequences_are_exact_consecutive_windows_of_long_enough_rollouts():
  rollouts = [numbered_rollout(i, n) for i, n in enumerate([1, 2, 5, 3, 9, 4])]
  picks = random_rollout_subsequences(rollouts, 500, 4, rng=0)
  assert len(picks) == 500
  used = set()
  for pick in picks:
    assert len(pick) == 4
    ids = {int(f.observation[0]) for f in pick}
    assert len(ids) == 1  # from one rollout
    rollout_id = ids.pop()
    used.add(rollout_id)
    assert len(rollouts[rollout_id]) >= 4
    indices = [int(f.observation[1]) for f in pick]
    assert indices == list(range(indices[0], indices[0] + 4))  # consecutive
  assert used == {2, 4, 5}  # every long-enough rollout, and none of the short ones


def test_subsequence_of_a_rollout_exactly_as_long_as_asked_is_the_rollout():
  rollouts = [numbered_rollout(0, 2), numbered_rollout(1, 3)]
  for pick in random_rollout_subsequences(rollouts, 20, 3, rng=1):
    assert [int(f.observation[1]) for f in pick] == [0, 1, 2]
    assert int(pick[0].observation[0]) == 1


def test_no_long_enough_rollout_is_a_value_error_naming_both_lengths():
  rollouts = [numbered_rollout(i, n) for i, n in enumerate([2, 7, 3])]
  with pytest.raises(ValueError, match=r"longest of the 3 rollouts has 7 frames.*of 8 frames"):
    random_rollout_subsequences(rollouts, 1, 8, rng=0)
  with pytest.raises(ValueError, match=r"has 0 frames"):
    random_rollout_subsequences([], 1, 1, rng=0)


def test_thousands_of_short_rollouts_never_recurse():
  short = [numbered_rollout(i, 2) for i in range(5000)]
  limit = sys.getrecursionlimit()
  sys.setrecursionlimit(200)  # a retrying-by-recursion version would blow this at once
  try:
    with pytest.raises(ValueError, match="has 2 frames"):
      random_rollout_subsequences(short, 100, 3, rng=0)
    picks = random_rollout_subsequences(short + [numbered_rollout(5000, 3)], 100, 3, rng=0)
  finally:
    sys.setrecursionlimit(limit)
  assert all(int(p[0].observation[0]) == 5000 for p in picks)


def test_seed_makes_picks_reproducible():
  rollouts = [numbered_rollout(i, n) for i, n in enumerate([5, 8, 13, 4])]

  def key(picks):
    return [(int(p[0].observation[0]), int(p[0].observation[1])) for p in picks]

  first = key(random_rollout_subsequences(rollouts, 50, 3, rng=7))
  assert key(random_rollout_subsequences(rollouts, 50, 3, rng=7)) == first
  assert key(random_rollout_subsequences(rollouts, 50, 3, rng=np.random.default_rng(7))) == first
  assert key(random_rollout_subsequences(rollouts, 50, 3, rng=8)) != first
  assert random_rollout_subsequences(rollouts, 0, 3, rng=0) == []


def test_bad_arguments_are_rejected():
  rollouts = [numbered_rollout(0, 5)]
  with pytest.raises(ValueError, match="subsequence_length"):
    random_rollout_subsequences(rollouts, 1, 0)
  with pytest.raises(ValueError, match="num_subsequences"):
    random_rollout_subsequences(rollouts, -1, 2)
  with pytest.raises(TypeError, match="rng"):
    random_rollout_subsequences(rollouts, 1, 2, rng="seed")


def _chi_square(counts, expected):
  return sum((c - expected) ** 2 / expected for c in counts)


def test_weighting_by_windows_makes_every_window_equally_likely():
  lengths = [3, 5, 10, 20, 2]  # windows of 3 frames: 1, 3, 8, 18, 0 -> 30 windows
  rollouts = [numbered_rollout(i, n) for i, n in enumerate(lengths)]
  num = 30000
  picks = random_rollout_subsequences(rollouts, num, 3, rng=123, weight_by_windows=True)
  windows = collections.Counter((int(p[0].observation[0]), int(p[0].observation[1]))
                                for p in picks)
  assert len(windows) == 30  # every window turns up
  expected = num / 30
  # 29 degrees of freedom: the 99.9% quantile of chi-square is 58.3.
  assert _chi_square(windows.values(), expected) < 58.3
  per_rollout = collections.Counter(int(p[0].observation[0]) for p in picks)
  for i, n in enumerate([1, 3, 8, 18]):
    assert abs(per_rollout[i] / num - n / 30) < 0.01

  # Unweighted, rollouts are equally likely, so a window of a short rollout is far likelier.
  picks = random_rollout_subsequences(rollouts, num, 3, rng=123)
  per_rollout = collections.Counter(int(p[0].observation[0]) for p in picks)
  assert _chi_square([per_rollout[i] for i in range(4)], num / 4) < 16.3  # 3 dof, 99.9%
  assert 4 not in per_rollout


def test_rollout_windows_lists_every_window_in_order():
  rollouts = [numbered_rollout(0, 4), numbered_rollout(1, 1), numbered_rollout(2, 3)]
  starts = [(int(w[0].observation[0]), int(w[0].observation[1]))
            for w in rollout_windows(rollouts, 3)]
  assert starts == [(0, 0), (0, 1), (2, 0)]


# --- the built-in environment ------------------------------------------------------------------


def run_env(env, seed, actions):
  observations = [env.reset(seed=seed)]
  rewards = []
  for a in actions:
    obs, reward, done = env.step(a)
    observations.append(obs)
    rewards.append(reward)
    if done:
      break
  return observations, rewards


def test_bouncing_ball_is_deterministic_for_a_seed():
  actions = np.random.default_rng(0).integers(3, size=200).tolist()
  obs_a, rew_a = run_env(BouncingBallEnv(8, 8), 5, actions)
  obs_b, rew_b = run_env(BouncingBallEnv(8, 8), 5, actions)
  assert rew_a == rew_b
  assert all(np.array_equal(a, b) for a, b in zip(obs_a, obs_b))
  assert len(obs_a) == len(obs_b)


def test_bouncing_ball_observations_and_rules():
  env = BouncingBallEnv(4, 4)
  obs = env.reset(seed=0)
  assert obs.shape == (4, 4) and obs.dtype == np.uint8
  assert (obs == BouncingBallEnv.BALL).sum() == 1 and obs[0].max() == BouncingBallEnv.BALL
  assert (obs[-1] == BouncingBallEnv.PADDLE).sum() == env.paddle_width == 2
  lengths, rewards = [], []
  for seed in range(20):
    observations, r = run_env(env, seed, [1, 2, 0] * 40)
    lengths.append(len(observations))
    rewards.extend(r)
    for a, b in zip(observations, observations[1:]):
      (ra, ca), (rb, cb) = np.argwhere(a == 1)[0], np.argwhere(b == 1)[0]
      assert abs(int(ra) - int(rb)) == 1 and abs(int(ca) - int(cb)) == 1  # one diagonal step
  assert min(lengths) >= 4  # at least `height` frames an episode
  assert set(rewards) <= {-1, 0, 1} and 1 in rewards and -1 in rewards
  env.reset(seed=0)
  with pytest.raises(ValueError, match="action"):
    env.step(3)


def test_bouncing_ball_rejects_bad_sizes_and_steps_after_done():
  with pytest.raises(ValueError, match="height >= 3"):
    BouncingBallEnv(2, 4)
  env = BouncingBallEnv(3, 3, max_episode_steps=1)
  env.reset(seed=0)
  assert env.step(0)[2]
  with pytest.raises(RuntimeError, match="reset"):
    env.step(0)


def test_collect_rollouts_counts_steps_and_is_reproducible():
  env = BouncingBallEnv(4, 4, max_episode_steps=10)
  rollouts = collect_rollouts(env, policies.RandomPolicy(3), 57, rng=3)
  assert sum(len(r) for r in rollouts) == 57 + len(rollouts)
  for r in rollouts[:-1]:
    assert r[-1].done and not any(f.done for f in r[:-1])
    assert r[0].reward == 0
  again = collect_rollouts(env, policies.RandomPolicy(3), 57, rng=3)
  assert [[(f.action, f.reward, f.done) for f in r] for r in rollouts] == \
         [[(f.action, f.reward, f.done) for f in r] for r in again]
  assert all(np.array_equal(f.observation, g.observation)
             for r, s in zip(rollouts, again) for f, g in zip(r, s))
  assert collect_rollouts(env, policies.RandomPolicy(3), 0, rng=3) == []


def test_compute_mean_reward_counts_finished_rollouts():
  done = [Frame(0, 0, 0, False), Frame(0, 0, 1, False), Frame(0, 0, -1, True)]
  cut = [Frame(0, 0, 0, False), Frame(0, 0, 1, False)]
  assert compute_mean_reward([done, done, cut]) == 0.0
  assert compute_mean_reward([cut], finished_only=False) == 1.0
  assert compute_mean_reward([]) == 0.0


# --- policies ----------------------------------------------------------------------------------


def test_policies_registry():
  env = BouncingBallEnv(4, 4)
  policy = policies.make_policy("random", env)
  rng = np.random.default_rng(0)
  actions = {policy.act(None, rng) for _ in range(100)}
  assert actions == {0, 1, 2}
  with pytest.raises(UnknownNameError, match="did you mean 'random'"):
    policies.make_policy("randm", env)

  @policies.register_policy("test_always_left")
  def always_left(env, policy_dir=None):
    del env, policy_dir
    return policies.ConstantPolicy(1)

  assert "test_always_left" in policies.list_policies()
  rollouts = collect_rollouts(env, policies.make_policy("test_always_left", env), 20, rng=0)
  assert {f.action for r in rollouts for f in r[:-1]} == {1}


# --- rollout files -----------------------------------------------------------------------------


def test_rollouts_round_trip_through_tfrecords(tmp_path):
  from t2t_lite.errors import CorruptDataError
  from t2t_lite.rl import rollout_io
  rollouts = collect_rollouts(BouncingBallEnv(4, 5), policies.RandomPolicy(3), 40, rng=0)
  path = str(tmp_path / "sub" / "r.tfrecord")
  assert rollout_io.write_rollouts(path, rollouts) == len(rollouts)
  assert [p.name for p in (tmp_path / "sub").iterdir()] == ["r.tfrecord"]  # no temp files
  back = rollout_io.read_rollouts(path)
  assert len(back) == len(rollouts)
  for r, s in zip(rollouts, back):
    assert [(f.action, f.reward, f.done) for f in r] == [(f.action, f.reward, f.done) for f in s]
    assert all(np.array_equal(f.observation, g.observation) and g.observation.shape == (4, 5)
               for f, g in zip(r, s))
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2])
  with pytest.raises(CorruptDataError, match="r.tfrecord"):
    rollout_io.read_rollouts(path)
