"""Environments for the model-based loop: a small interface, a built-in one, a gymnasium adapter.

An environment here is anything with

    num_actions: int                      actions are 0 .. num_actions - 1
    num_observation_values: int           observations hold ints in 0 .. num_observation_values - 1
    observation_shape: tuple of ints
    reward_range: (low, high) ints        rewards are ints in [low, high]
    reset(seed=None) -> observation       numpy int array of observation_shape
    step(action) -> (observation, reward, done)

`BouncingBallEnv` is built in and deterministic (no gym needed). Where `gymnasium` is
installed, `GymnasiumEnv("FrozenLake-v1")` adapts an env with discrete observations and actions.
`collect_rollouts` runs a policy (see `t2t_lite.rl.policies`) in an environment.
"""
import numpy as np

from t2t_lite.rl.rollouts import Frame, as_rng


class Env:
  """Base class of the environment interface above (subclasses set the attributes)."""

  num_actions = None
  num_observation_values = None
  observation_shape = None
  reward_range = (0, 0)

  def reset(self, seed=None):
    raise NotImplementedError

  def step(self, action):
    raise NotImplementedError

  def close(self):
    pass


class BouncingBallEnv(Env):
  """A ball bouncing in a small grid, with a paddle on the bottom row.

  Each step first moves the paddle by the action (0 stay, 1 left, 2 right; stopped by the
  walls), then moves the ball one cell diagonally; it bounces off the side walls and the top.
  When the ball is one row above the paddle row and moving down: if the paddle covers the
  column it moves to, it bounces back up and the reward is +1; otherwise it falls into the
  bottom row, the reward is -1 and the episode ends. An episode also ends after
  `max_episode_steps` steps. The ball starts on the top row moving down, at a random column
  and horizontal direction drawn from the seed, so every episode lasts at least `height` frames.

  Observations are `uint8[height, width]`: 0 empty, 1 ball, 2 paddle. Given the last two
  observations and the action, the next observation and the reward are fully determined.

  Args:
    height: rows (>= 3).
    width: columns (>= 2).
    paddle_width: paddle cells; default `(width + 2) // 3` (3 on 8 columns, 2 on 4).
    max_episode_steps: steps before an episode is cut off (done); 0 for no limit.

  Example:
    env = BouncingBallEnv(4, 4)
    obs = env.reset(seed=0)
    obs, reward, done = env.step(2)  # move the paddle right
  """

  EMPTY, BALL, PADDLE = 0, 1, 2
  STAY, LEFT, RIGHT = 0, 1, 2
  num_actions = 3
  num_observation_values = 3
  reward_range = (-1, 1)

  def __init__(self, height=8, width=8, paddle_width=None, max_episode_steps=100):
    if height < 3 or width < 2:
      raise ValueError("BouncingBallEnv needs height >= 3 and width >= 2; got %dx%d." %
                       (height, width))
    paddle_width = (width + 2) // 3 if paddle_width is None else paddle_width
    if not 1 <= paddle_width <= width:
      raise ValueError("paddle_width must be in [1, width=%d]; got %d." % (width, paddle_width))
    if max_episode_steps < 0:
      raise ValueError("max_episode_steps must be >= 0; got %d." % max_episode_steps)
    self.height, self.width = int(height), int(width)
    self.paddle_width = int(paddle_width)
    self.max_episode_steps = int(max_episode_steps)
    self.observation_shape = (self.height, self.width)
    self._rng = np.random.default_rng()
    self._done = True

  def reset(self, seed=None):
    """Starts an episode; a seed makes it (and the ones after it) reproducible."""
    if seed is not None:
      self._rng = np.random.default_rng(seed)
    self._ball_row = 0
    self._ball_col = int(self._rng.integers(self.width))
    self._row_velocity = 1
    self._col_velocity = int(self._rng.choice([-1, 1]))
    self._paddle = (self.width - self.paddle_width) // 2
    self._steps = 0
    self._done = False
    return self._observation()

  def step(self, action):
    if self._done:
      raise RuntimeError("BouncingBallEnv.step called on a finished episode; call reset().")
    action = int(action)
    if not 0 <= action < self.num_actions:
      raise ValueError("action must be in [0, %d); got %d." % (self.num_actions, action))
    move = {self.STAY: 0, self.LEFT: -1, self.RIGHT: 1}[action]
    self._paddle = min(max(self._paddle + move, 0), self.width - self.paddle_width)

    col = self._ball_col + self._col_velocity
    if not 0 <= col < self.width:
      self._col_velocity = -self._col_velocity
      col = self._ball_col + self._col_velocity
    row = self._ball_row + self._row_velocity
    reward = 0
    if row < 0:  # the top wall
      self._row_velocity = 1
      row = self._ball_row + 1
    elif row == self.height - 1:  # the paddle row
      if self._paddle <= col < self._paddle + self.paddle_width:
        reward = 1
        self._row_velocity = -1
        row = self._ball_row - 1
      else:
        reward = -1
        self._done = True
    self._ball_row, self._ball_col = row, col
    self._steps += 1
    if self.max_episode_steps and self._steps >= self.max_episode_steps:
      self._done = True
    return self._observation(), reward, self._done

  def _observation(self):
    obs = np.zeros(self.observation_shape, dtype=np.uint8)
    obs[-1, self._paddle:self._paddle + self.paddle_width] = self.PADDLE
    obs[self._ball_row, self._ball_col] = self.BALL
    return obs


class GymnasiumEnv(Env):
  """Adapts a gymnasium env with a Discrete action space and discrete observations.

  Observations may be a `Discrete` space (given as a one-element array) or an integer `Box`
  with finite bounds starting at 0 (e.g. uint8 images). Rewards are rounded to ints and
  clipped to `reward_range`. Needs `gymnasium` installed (it is optional for t2t_lite).

  Args:
    env_id: a gymnasium id, e.g. "FrozenLake-v1".
    reward_range: (low, high) ints rewards are clipped to.
    **make_kwargs: passed to `gymnasium.make`.
  """

  def __init__(self, env_id, reward_range=(-1, 1), **make_kwargs):
    try:
      import gymnasium  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ImportError("GymnasiumEnv(%r) needs gymnasium: pip install gymnasium" %
                        (env_id,)) from None
    spaces = gymnasium.spaces
    self._env = gymnasium.make(env_id, **make_kwargs)
    if not isinstance(self._env.action_space, spaces.Discrete):
      raise ValueError("%s: only Discrete action spaces are supported; got %s." %
                       (env_id, self._env.action_space))
    self.num_actions = int(self._env.action_space.n)
    obs_space = self._env.observation_space
    if isinstance(obs_space, spaces.Discrete):
      self._scalar_obs = True
      self.num_observation_values = int(obs_space.n)
      self.observation_shape = (1,)
    elif (isinstance(obs_space, spaces.Box) and np.issubdtype(obs_space.dtype, np.integer) and
          np.all(obs_space.low == 0)):
      self._scalar_obs = False
      self.num_observation_values = int(np.max(obs_space.high)) + 1
      self.observation_shape = tuple(obs_space.shape)
    else:
      raise ValueError("%s: observations must be Discrete or an integer Box from 0; got %s." %
                       (env_id, obs_space))
    self.reward_range = tuple(int(r) for r in reward_range)

  def _obs(self, obs):
    if self._scalar_obs:
      return np.array([obs], dtype=np.int64)
    return np.asarray(obs)

  def reset(self, seed=None):
    obs, _ = self._env.reset(seed=seed)
    return self._obs(obs)

  def step(self, action):
    obs, reward, terminated, truncated, _ = self._env.step(int(action))
    low, high = self.reward_range
    reward = int(min(max(round(float(reward)), low), high))
    return self._obs(obs), reward, bool(terminated or truncated)

  def close(self):
    self._env.close()


def collect_rollouts(env, policy, num_steps, rng=None):
  """Runs `policy` in `env` for `num_steps` steps; returns the rollouts (lists of `Frame`).

  A new episode starts (reset with a seed drawn from `rng`) at the beginning and after each
  episode ends; the last rollout is cut off when the steps run out (its last frame is then not
  `done`). Each step adds one frame, each rollout one more (its first), so the rollouts hold
  `num_steps + len(rollouts)` frames.

  Args:
    env: an environment (see the module docstring).
    policy: has `act(observation, rng) -> int` (see `t2t_lite.rl.policies`).
    num_steps: environment steps to take (>= 0).
    rng: None, an int seed or a numpy Generator; seeds both the resets and the policy.
  """
  if num_steps < 0:
    raise ValueError("num_steps must be >= 0; got %d." % num_steps)
  rng = as_rng(rng)
  rollouts = []
  steps = 0
  while steps < num_steps:
    obs = env.reset(seed=int(rng.integers(2**31 - 1)))
    reward, done = 0, False
    frames = []
    while True:
      if steps >= num_steps:
        frames.append(Frame(obs, 0, reward, done))
        break
      action = int(policy.act(obs, rng))
      frames.append(Frame(obs, action, reward, done))
      obs, reward, done = env.step(action)
      steps += 1
      if done:
        frames.append(Frame(obs, 0, reward, True))
        break
    rollouts.append(frames)
  return rollouts
