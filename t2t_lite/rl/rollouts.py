"""Rollouts: what an environment gave back, frame by frame, and how to sample from them.

A *rollout* is a plain Python list of `Frame`s, one per observation, in the order the
environment produced them (one episode, or the part of one that was collected):

    rollout = [Frame(observation=o0, action=a0, reward=0,  done=False),
               Frame(observation=o1, action=a1, reward=r1, done=False),
               ...
               Frame(observation=oT, action=0,  reward=rT, done=True)]

`Frame.reward` and `Frame.done` are what the environment returned on *arriving* at
`observation` (so the first frame of an episode has reward 0 and done False), and
`Frame.action` is the action taken *at* `observation` (0 on a last frame, where none was).
This is tensor2tensor's convention; it puts each transition into two neighbouring frames:
`frames[t].observation --frames[t].action--> frames[t+1].observation, frames[t+1].reward`.

Observations are numpy arrays of small non-negative integers (pixel values or cell states).
"""
import math
import typing

import numpy as np


class Frame(typing.NamedTuple):
  """One step of a rollout.

  Attributes:
    observation: numpy int array, the environment's observation.
    action: int, the action taken at this observation (0 on the last frame).
    reward: number, the reward received on arriving at this observation.
    done: bool, True when the episode ended on arriving here.
  """
  observation: np.ndarray
  action: int
  reward: float
  done: bool


Rollout = typing.List[Frame]


def real_env_step_increment(hparams):
  """Real-environment steps to collect in each epoch of the model-based loop.

  Args:
    hparams: anything with `num_real_env_frames` (the total over the run) and `epochs`.

  Returns:
    `ceil(num_real_env_frames / epochs)`, so that `epochs` increments cover the total.

  Raises:
    ValueError: `epochs` is not positive.
  """
  epochs = int(hparams.epochs)
  if epochs <= 0:
    raise ValueError("epochs must be positive to split num_real_env_frames=%d over them; "
                     "got epochs=%d." % (hparams.num_real_env_frames, epochs))
  return int(math.ceil(hparams.num_real_env_frames / epochs))


def as_rng(rng=None):
  """A numpy Generator from None (fresh entropy), an int seed, or a Generator (returned as is)."""
  if rng is None or isinstance(rng, (int, np.integer)):
    return np.random.default_rng(rng)
  if isinstance(rng, np.random.Generator):
    return rng
  raise TypeError("rng must be None, an int seed or a numpy.random.Generator; got %r" % (rng,))


def random_rollout_subsequences(rollouts, num_subsequences, subsequence_length, rng=None,
                                weight_by_windows=False):
  """Picks random windows of consecutive frames from rollouts.

  Each pick chooses a rollout, then a window of exactly `subsequence_length` consecutive frames
  inside it. Rollouts shorter than `subsequence_length` are never chosen (they are filtered out
  up front: tensor2tensor retried recursively and never ended when all were too short).

  Args:
    rollouts: a sequence of rollouts (anything that has `len` and slices, normally lists of
      `Frame`).
    num_subsequences: how many windows to return (>= 0).
    subsequence_length: frames in each window (>= 1).
    rng: None, an int seed or a `numpy.random.Generator`; a seed or a seeded Generator gives
      the same picks on every run.
    weight_by_windows: False: every long-enough rollout is equally likely, whatever its length.
      True: a rollout is chosen in proportion to the windows it holds
      (`len - subsequence_length + 1`), so every window of every rollout is equally likely.

  Returns:
    A list of `num_subsequences` slices of the rollouts, each `subsequence_length` long.

  Raises:
    ValueError: no rollout has `subsequence_length` frames (the message gives the longest
      rollout's length and the length asked), or an argument is out of range.

  Example:
    windows = random_rollout_subsequences(rollouts, 64, 3, rng=0, weight_by_windows=True)
  """
  if subsequence_length < 1:
    raise ValueError("subsequence_length must be >= 1; got %d." % subsequence_length)
  if num_subsequences < 0:
    raise ValueError("num_subsequences must be >= 0; got %d." % num_subsequences)
  rng = as_rng(rng)
  lengths = np.array([len(r) for r in rollouts], dtype=np.int64)
  windows = np.maximum(lengths - subsequence_length + 1, 0)
  eligible = np.flatnonzero(windows)
  if eligible.size == 0:
    longest = int(lengths.max()) if lengths.size else 0
    raise ValueError(
        "random_rollout_subsequences: no rollout is long enough: the longest of the %d "
        "rollouts has %d frames and subsequences of %d frames were asked for. Collect longer "
        "rollouts or ask for shorter subsequences." %
        (lengths.size, longest, subsequence_length))
  if num_subsequences == 0:
    return []
  probabilities = None
  if weight_by_windows:
    probabilities = windows[eligible] / windows[eligible].sum()
  picks = rng.choice(eligible, size=num_subsequences, p=probabilities)
  starts = rng.integers(0, windows[picks])  # one start per pick, in [0, windows)
  return [rollouts[i][s:s + subsequence_length] for i, s in zip(picks.tolist(), starts.tolist())]


def rollout_windows(rollouts, subsequence_length):
  """Every window of `subsequence_length` consecutive frames, rollout by rollout, in order."""
  return [r[s:s + subsequence_length]
          for r in rollouts for s in range(len(r) - subsequence_length + 1)]


def num_frames(rollouts):
  """Total frames over the rollouts."""
  return sum(len(r) for r in rollouts)


def compute_mean_reward(rollouts, finished_only=True):
  """Mean over rollouts of the summed reward; 0.0 when there is none to average.

  Args:
    rollouts: rollouts (lists of `Frame`).
    finished_only: count only rollouts whose last frame is `done` (a rollout cut off by the
      step budget would pull the mean down).
  """
  totals = [sum(float(f.reward) for f in r) for r in rollouts
            if r and (r[-1].done or not finished_only)]
  return float(np.mean(totals)) if totals else 0.0
