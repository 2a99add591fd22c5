"""Policies that act in an environment, and a small registry of them.

A policy has one method, `act(observation, rng) -> int` (an action in `0 .. num_actions - 1`;
`rng` is a numpy Generator, so a seeded run is reproducible). A policy *factory* builds one for
an environment:

    @register_policy("always_right")
    def always_right(env, policy_dir=None):
      return ConstantPolicy(2)

    policy = make_policy("always_right", env)  # the model-based loop does this with hparams.policy

`policy_dir` is the loop's policy folder, where a learned policy keeps its checkpoints.
"""
import difflib

from t2t_lite.errors import RegistrationError, UnknownNameError


class Policy:
  """The policy interface."""

  def act(self, observation, rng):
    raise NotImplementedError


class RandomPolicy(Policy):
  """Picks each action uniformly at random.

  Args:
    num_actions: actions are `0 .. num_actions - 1`.
  """

  def __init__(self, num_actions):
    if num_actions < 1:
      raise ValueError("num_actions must be >= 1; got %d." % num_actions)
    self.num_actions = int(num_actions)

  def act(self, observation, rng):
    del observation
    return int(rng.integers(self.num_actions))


class ConstantPolicy(Policy):
  """Always takes the same action (handy in tests)."""

  def __init__(self, action):
    self.action = int(action)

  def act(self, observation, rng):
    del observation, rng
    return self.action


_POLICIES = {}


def register_policy(name):
  """A decorator registering a factory `fn(env, policy_dir=None) -> Policy` under `name`."""

  def decorator(factory):
    old = _POLICIES.get(name)
    if old is not None and old is not factory and (
        getattr(old, "__qualname__", None) != getattr(factory, "__qualname__", None) or
        getattr(old, "__module__", None) != getattr(factory, "__module__", None)):
      raise RegistrationError("policy %r is already registered by %s.%s." %
                              (name, old.__module__, old.__qualname__))
    _POLICIES[name] = factory
    return factory

  return decorator


def list_policies():
  return sorted(_POLICIES)


def make_policy(name, env, policy_dir=None):
  """Builds the registered policy `name` for `env`."""
  if name not in _POLICIES:
    close = difflib.get_close_matches(str(name), list_policies(), n=3, cutoff=0.6)
    hint = ("did you mean %s?" % " or ".join(repr(c) for c in close) if close else
            "registered: %s." % ", ".join(list_policies()))
    raise UnknownNameError("policy=%s: unknown policy; %s Register one with "
                           "t2t_lite.rl.register_policy." % (name, hint))
  return _POLICIES[name](env, policy_dir=policy_dir)


@register_policy("random")
def random_policy(env, policy_dir=None):
  """Uniformly random actions (the policy tensor2tensor's loop starts from)."""
  del policy_dir
  return RandomPolicy(env.num_actions)
