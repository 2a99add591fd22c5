"""`T2TModel`: what every registered model shares.

A registered model is a `keras.Model` built as `cls(hparams, problem_hparams)` and called on
the batch dict a Problem's dataset yields:

    model = registry.model("transformer")(hparams, problem_hparams)
    logits = model(features, training=True)      # float32, [B, T, vocab] or [B, num_classes]
    loss_sum, weight_sum = model.loss_sum(logits, features)

This base class keeps both hparams as plain dicts in `get_config` (so `model.save("m.keras")`
and `keras.models.load_model` round-trip them), remembers the shapes and dtypes of the first
batch so that a loaded model rebuilds its weights before they are restored, and resolves the
dtype policy from `hparams.mixed_precision`.
"""
import copy

import keras
from keras import ops

from t2t_lite import common_hparams
from t2t_lite.hparams import HParams
from t2t_lite.models import losses


def _jsonable(value):
  """value as JSON-friendly Python (tuples become lists), or _DROP if it has no such form."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (list, tuple)):
    items = [_jsonable(v) for v in value]
    return _DROP if any(v is _DROP for v in items) else items
  if isinstance(value, dict):
    items = {k: _jsonable(v) for k, v in value.items()}
    if not all(isinstance(k, str) for k in items) or any(v is _DROP for v in items.values()):
      return _DROP
    return items
  if hasattr(value, "item") and getattr(value, "shape", None) == ():
    return value.item()  # a numpy scalar
  return _DROP


_DROP = object()


def hparams_to_dict(hparams):
  """A plain, JSON-friendly dict copy of an HParams (or a dict, or None).

  Values with no JSON form (an encoder object a problem attached, say) are left out: the
  model config must survive `model.save()`, and models read only plain values.
  """
  if hparams is None:
    return {}
  if isinstance(hparams, dict):
    values = hparams
  elif callable(getattr(hparams, "values", None)):
    values = hparams.values()
  else:
    raise TypeError("Expected an HParams or a dict; received %r." % type(hparams))
  plain = {}
  for name, value in dict(values).items():
    value = _jsonable(value)
    if value is not _DROP:
      plain[name] = value
  return plain


def dict_to_hparams(values):
  """An HParams holding `values` (a dict, or an HParams that is copied)."""
  return HParams(**hparams_to_dict(values))


class _Plain:
  """Holds plain Python values out of Keras's attribute tracking (which would wrap dicts and
  lists in tracked containers)."""

  def __init__(self, **values):
    self.__dict__.update(values)


class T2TModel(keras.Model):
  """Base class of the registered models (not registered itself).

  Args:
    hparams: the model's HParams (an hparams set, overridden by --hparams), or a dict.
    problem_hparams: the problem's HParams (or a dict) with `vocab_size` {"inputs": n,
      "targets": n}, `modality` {"inputs": ..., "targets": ...} and `has_inputs`.
    **kwargs: `keras.Model` arguments (name, ...).

  Class attributes:
    reads_packed_features: True for a model that reads packed rows (`*_segmentation` and
      `*_position`, `t2t_lite.data.packing`) as the separate examples they hold; any other
      model refuses a batch that has them (it would mix the examples of a row).

  Attributes:
    hparams, problem_hparams: HParams copies of the arguments.
    layer_dtype: the dtype policy name given to every layer (`hparams.mixed_precision`,
      "auto" resolved by `common_hparams.dtype_policy`), or None to follow Keras's global
      policy.
  """

  reads_packed_features = False

  def __init__(self, hparams, problem_hparams, **kwargs):
    super().__init__(**kwargs)
    self._plain = _Plain(hparams=hparams_to_dict(hparams),
                         problem_hparams=hparams_to_dict(problem_hparams),
                         feature_specs=None)
    self.hparams = dict_to_hparams(self._plain.hparams)
    self.problem_hparams = dict_to_hparams(self._plain.problem_hparams)
    self.layer_dtype = common_hparams.dtype_policy(self.hp("mixed_precision"))

  # --- hparams helpers -----------------------------------------------------------------------

  def track_layers(self, prefix, layer_list):
    """Returns `layer_list`, each layer also set as attribute `prefix_i`.

    Keras tracks the weights of layers kept in a list attribute, but tf.train.Checkpoint
    (Keras 3.15 on TF 2.21) does not see them: a checkpoint of the model alone would lack
    them. Every list of layers in a model goes through here.
    """
    for i, layer in enumerate(layer_list):
      setattr(self, "%s_%d" % (prefix, i), layer)
    return layer_list

  def hp(self, name):
    """`hparams.name`, or basic_params1's value where the hparams lack it (the one home of the
    shared defaults; a model's own hparams have theirs in its hparams set)."""
    return common_hparams.get(self._plain.hparams, name)

  def problem_hp(self, name, default=None):
    """`problem_hparams.name`, or `default`."""
    return self._plain.problem_hparams.get(name, default)

  def modality(self, feature):
    """The problem's modality of "inputs" or "targets" (default "symbol")."""
    return (self.problem_hp("modality") or {}).get(feature, "symbol")

  def vocab_size(self, feature):
    """The problem's vocabulary size (or number of classes) of "inputs" or "targets"."""
    sizes = self.problem_hp("vocab_size") or {}
    if feature not in sizes or not sizes[feature]:
      raise ValueError("%s: problem_hparams.vocab_size has no size for %r (got %r)." %
                       (type(self).__name__, feature, sizes))
    return int(sizes[feature])

  @property
  def has_inputs(self):
    """Whether the problem gives "inputs" (False for language models)."""
    return bool(self.problem_hp("has_inputs", True))

  # --- loss ----------------------------------------------------------------------------------

  def loss_sum(self, logits, features):
    """`losses.model_loss` for this model's hparams: (loss_sum, weight_sum), float32."""
    return losses.model_loss(logits, features, self.problem_hparams, self.hparams)

  # --- keras plumbing ------------------------------------------------------------------------

  def required_features(self):
    """The feature names `call` reads (checked before Keras traces or builds anything)."""
    return ("inputs", "targets") if self.has_inputs else ("targets",)

  def __call__(self, features, *args, **kwargs):
    self._check_features(features, *self.required_features())
    if self._plain.feature_specs is None:
      self._plain.feature_specs = {
          name: ([None] + [d if d is not None else 1 for d in tuple(value.shape)[1:]],
                 keras.backend.standardize_dtype(value.dtype))
          for name, value in features.items() if hasattr(value, "shape")}
    return super().__call__(features, *args, **kwargs)

  def _check_features(self, features, *names):
    if not isinstance(features, dict):
      raise TypeError("%s expects the feature dict of a batch, e.g. {'inputs': ..., "
                      "'targets': ...}; received %r." % (type(self).__name__, type(features)))
    if not self.reads_packed_features:
      packed = [n for n in ("inputs_segmentation", "targets_segmentation") if n in features]
      if packed:
        raise ValueError(
            "%s does not read packed rows (the batch has %s): train it with the hparam "
            "packed_length=0." % (type(self).__name__, ", ".join(sorted(packed))))
    missing = [n for n in names if n not in features]
    if missing:
      raise ValueError("%s: the features have no %s (they have %s)." %
                       (type(self).__name__, " or ".join(repr(m) for m in missing),
                        sorted(features)))

  @staticmethod
  def _float32(logits):
    # Models always return float32 logits, whatever the dtype policy of their layers.
    return ops.cast(logits, "float32")

  def get_config(self):
    return {
        "name": self.name,
        "trainable": self.trainable,
        "hparams": copy.deepcopy(self._plain.hparams),
        "problem_hparams": copy.deepcopy(self._plain.problem_hparams),
    }

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    hparams = config.pop("hparams")
    problem_hparams = config.pop("problem_hparams")
    trainable = config.pop("trainable", True)
    model = cls(hparams, problem_hparams, **config)
    model.trainable = trainable
    return model

  def get_build_config(self):
    if self._plain.feature_specs is None:
      return None
    return {"features": copy.deepcopy(self._plain.feature_specs)}

  def build_from_config(self, config):
    """Builds the weights by calling the model once on zeros shaped like the first batch."""
    if not config or "features" not in config:
      return
    features = {name: ops.zeros([1] + list(shape[1:]), dtype)
                for name, (shape, dtype) in config["features"].items()}
    self(features, training=False)
