"""World models as sequence-to-sequence problems: frames, actions and rewards as tokens.

A world model predicts the next frame and the reward from the last few frames and the action
taken. `FrameTokenizer` writes one such step as an ordinary `inputs` -> `targets` pair of token
ids, so the stock transformer and trainer learn it with no special model:

    inputs  = pixels(frame t-k+1) ... pixels(frame t)  action(t)  EOS
    targets = pixels(frame t+1)  reward(t+1)  EOS

Token ids (0 is padding and 1 is EOS, `t2t_lite.constants`' PAD_ID and EOS_ID):

    pixel value v            2 + v                              v in [0, num_observation_values)
    action a                 2 + num_observation_values + a
    reward r                 2 + num_observation_values + num_actions + (r - reward_low)

`world_model_metrics` scores predicted targets against the true ones: `next_frame_error` (the
fraction of pixel tokens that are wrong), `frame_accuracy` (frames with every pixel right) and
`reward_accuracy`.
"""
import numpy as np

from t2t_lite.constants import EOS_ID, NUM_RESERVED_TOKENS, PAD_ID


class FrameTokenizer:
  """Encodes rollout windows as token ids (see the module docstring).

  Args:
    observation_shape: one frame's shape, e.g. (8, 8).
    num_observation_values: pixel values are ints in [0, num_observation_values).
    num_actions: actions are ints in [0, num_actions).
    reward_range: (low, high): rewards are ints in [low, high].
    frame_stack_size: k, the input frames of each example.

  Example:
    tok = FrameTokenizer((4, 4), 3, 3, (-1, 1), frame_stack_size=2)
    example = tok.encode_window(window)   # window: 3 consecutive Frames
    frame, reward = tok.decode_targets(example["targets"])
  """

  def __init__(self, observation_shape, num_observation_values, num_actions, reward_range,
               frame_stack_size=2):
    if frame_stack_size < 1:
      raise ValueError("frame_stack_size must be >= 1; got %d." % frame_stack_size)
    low, high = (int(r) for r in reward_range)
    if high < low:
      raise ValueError("reward_range must be (low, high) with low <= high; got %r." %
                       (reward_range,))
    self.observation_shape = tuple(int(d) for d in observation_shape)
    self.num_observation_values = int(num_observation_values)
    self.num_actions = int(num_actions)
    self.reward_range = (low, high)
    self.frame_stack_size = int(frame_stack_size)
    self.frame_size = int(np.prod(self.observation_shape))
    self.action_offset = NUM_RESERVED_TOKENS + self.num_observation_values
    self.reward_offset = self.action_offset + self.num_actions
    self.vocab_size = self.reward_offset + (high - low + 1)

  @property
  def window_length(self):
    """Frames in the window one example is made from: k inputs and the next frame."""
    return self.frame_stack_size + 1

  @property
  def inputs_length(self):
    """Tokens in `inputs`, EOS included."""
    return self.frame_stack_size * self.frame_size + 2

  @property
  def targets_length(self):
    """Tokens in `targets`, EOS included."""
    return self.frame_size + 2

  def encode_frame(self, observation):
    obs = np.asarray(observation, dtype=np.int64)
    if obs.shape != self.observation_shape:
      raise ValueError("an observation has shape %s; the tokenizer expects %s." %
                       (obs.shape, self.observation_shape))
    if obs.size and (obs.min() < 0 or obs.max() >= self.num_observation_values):
      raise ValueError("observation values must be in [0, %d); got [%d, %d]." %
                       (self.num_observation_values, obs.min(), obs.max()))
    return (obs.reshape(-1) + NUM_RESERVED_TOKENS).tolist()

  def encode_action(self, action):
    action = int(action)
    if not 0 <= action < self.num_actions:
      raise ValueError("action must be in [0, %d); got %d." % (self.num_actions, action))
    return self.action_offset + action

  def encode_reward(self, reward):
    low, high = self.reward_range
    reward = int(round(float(reward)))
    return self.reward_offset + min(max(reward, low), high) - low

  def decode_reward(self, token):
    """The reward a token stands for, or None when it is not a reward token."""
    token = int(token)
    if self.reward_offset <= token < self.vocab_size:
      return token - self.reward_offset + self.reward_range[0]
    return None

  def encode_window(self, window):
    """`{"inputs": [...], "targets": [...]}` from `window_length` consecutive frames."""
    if len(window) != self.window_length:
      raise ValueError("a window needs frame_stack_size + 1 = %d frames; got %d." %
                       (self.window_length, len(window)))
    k = self.frame_stack_size
    inputs = []
    for frame in window[:k]:
      inputs.extend(self.encode_frame(frame.observation))
    inputs.append(self.encode_action(window[k - 1].action))
    inputs.append(EOS_ID)
    targets = self.encode_frame(window[k].observation)
    targets.append(self.encode_reward(window[k].reward))
    targets.append(EOS_ID)
    return {"inputs": inputs, "targets": targets}

  def encode_windows(self, windows):
    """int32 arrays `inputs` [N, inputs_length] and `targets` [N, targets_length]."""
    examples = [self.encode_window(w) for w in windows]
    inputs = np.array([e["inputs"] for e in examples], dtype=np.int32).reshape(
        -1, self.inputs_length)
    targets = np.array([e["targets"] for e in examples], dtype=np.int32).reshape(
        -1, self.targets_length)
    return inputs, targets

  def decode_targets(self, tokens):
    """(frame, reward) from target tokens; pixels that are not pixel tokens come back as -1
    and a reward that is not a reward token as None."""
    tokens = _fit(np.asarray(tokens, dtype=np.int64).reshape(1, -1), self.frame_size + 1)[0]
    pixels = tokens[:self.frame_size] - NUM_RESERVED_TOKENS
    pixels[(pixels < 0) | (pixels >= self.num_observation_values)] = -1
    return pixels.reshape(self.observation_shape), self.decode_reward(tokens[self.frame_size])

  def metrics(self, predictions, targets):
    """`world_model_metrics` for this tokenizer's frame size."""
    return world_model_metrics(predictions, targets, self.frame_size)


def _fit(tokens, length):
  """Cuts or pads (with PAD_ID) the last axis to `length`."""
  tokens = tokens[:, :length]
  if tokens.shape[1] < length:
    tokens = np.pad(tokens, [(0, 0), (0, length - tokens.shape[1])], constant_values=PAD_ID)
  return tokens


def world_model_metrics(predictions, targets, frame_size):
  """Scores predicted next frames and rewards against the true ones.

  Args:
    predictions: int [N, T'] predicted target tokens (cut or padded to the frame and reward).
    targets: int [N, T] true target tokens (`frame_size` pixels, the reward, EOS, padding).
    frame_size: pixels in a frame.

  Returns:
    {"next_frame_error": fraction of pixel tokens wrong, "frame_accuracy": fraction of frames
    with every pixel right, "reward_accuracy": fraction of rewards right, "num_examples": N}.
    With no examples, the rates are 0.0.
  """
  predictions = np.asarray(predictions, dtype=np.int64)
  targets = np.asarray(targets, dtype=np.int64)
  if predictions.ndim != 2 or targets.ndim != 2 or len(predictions) != len(targets):
    raise ValueError("predictions and targets must be [N, T] with the same N; got %s and %s."
                     % (predictions.shape, targets.shape))
  n = len(targets)
  if n == 0:
    return {"next_frame_error": 0.0, "frame_accuracy": 0.0, "reward_accuracy": 0.0,
            "num_examples": 0}
  predictions = _fit(predictions, frame_size + 1)
  targets = _fit(targets, frame_size + 1)
  wrong = predictions[:, :frame_size] != targets[:, :frame_size]
  return {
      "next_frame_error": float(wrong.mean()),
      "frame_accuracy": float((~wrong.any(axis=1)).mean()),
      "reward_accuracy": float((predictions[:, frame_size] == targets[:, frame_size]).mean()),
      "num_examples": int(n),
  }
