"""HParams: typed hyperparameters. (Minimal placeholder; replaced by the registry/hparams issue.)"""
import copy


class HParams:
  def __init__(self, **kwargs):
    object.__setattr__(self, "_values", {})
    for k, v in kwargs.items():
      self.add_hparam(k, v)

  def add_hparam(self, name, value):
    self._values[name] = value

  def __getattr__(self, name):
    try:
      return self.__dict__["_values"][name]
    except KeyError:
      raise AttributeError(name) from None

  def __setattr__(self, name, value):
    self._values[name] = value

  def __contains__(self, name):
    return name in self._values

  def values(self):
    return dict(self._values)

  def copy(self):
    return HParams(**copy.deepcopy(self._values))
