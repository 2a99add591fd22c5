"""basic_fc_relu: the smallest classifier, a stack of fully connected ReLU layers.

tensor2tensor's `basic_fc_relu`: flatten the inputs, then `num_hidden_layers` times
Dense(hidden_size) -> ReLU -> dropout, then a Dense to the classes.
"""
import keras
from keras import ops

from t2t_lite import registry
from t2t_lite.common_hparams import basic_params1
from t2t_lite.layers.dense import Dense
from t2t_lite.layers.dropout import Dropout
from t2t_lite.models import base


@registry.register_model("basic_fc_relu")
@keras.saving.register_keras_serializable(package="t2t_lite")
class BasicFcRelu(base.T2TModel):
  """A fully connected ReLU network over the flattened inputs, for class-label problems.

  Args:
    hparams: HParams with `hidden_size`, `num_hidden_layers` and `dropout`.
    problem_hparams: HParams with `vocab_size["targets"]` (the number of classes); "inputs"
      are images [B, H, W, C] in [0, 1] or any fixed-size float or int tensor [B, ...].

  Call arguments:
    features: {"inputs": [batch, ...], "targets": ...}; only "inputs" is read.
    training: whether dropout is active.

  Returns:
    float32 logits [batch, num_classes].

  Example:

  >>> hp = registry.hparams("basic_fc_small")
  >>> php = HParams(vocab_size={"inputs": 256, "targets": 10},
  ...               modality={"inputs": "image", "targets": "class_label"}, has_inputs=True)
  >>> model = registry.model("basic_fc_relu")(hp, php)
  >>> logits = model({"inputs": images}, training=False)      # [B, 10]
  """

  def __init__(self, hparams, problem_hparams, **kwargs):
    super().__init__(hparams, problem_hparams, **kwargs)
    hidden_size = int(self.hp("hidden_size"))
    num_layers = int(self.hp("num_hidden_layers"))
    dropout = float(self.hp("dropout"))
    self.flatten = keras.layers.Flatten(dtype=self.layer_dtype, name="flatten")
    self.hidden_layers = self.track_layers("hidden_layer", [
        Dense(hidden_size, activation="relu", dtype=self.layer_dtype, name="dense_%d" % i)
        for i in range(num_layers)])
    self.dropouts = self.track_layers("dropout_layer", [
        Dropout(dropout, dtype=self.layer_dtype, name="dropout_%d" % i)
        for i in range(num_layers)])
    self.classifier = Dense(self.vocab_size("targets"), dtype=self.layer_dtype,
                            name="classifier")

  def required_features(self):
    return ("inputs",)

  def call(self, features, training=None):
    x = features["inputs"]
    if not keras.backend.is_float_dtype(x.dtype):
      x = ops.cast(x, "float32")  # the layers cast on to their compute dtype
    x = self.flatten(x)
    for dense, dropout in zip(self.hidden_layers, self.dropouts):
      x = dropout(dense(x), training=training)
    return self._float32(self.classifier(x))


@registry.register_hparams
def basic_fc_small():
  """A small fully connected classifier (tensor2tensor's basic_fc_small).

  Train it:

      t2t-trainer --problem=image_mnist --model=basic_fc_relu --hparams_set=basic_fc_small \\
          --train_steps=2000 --data_dir=~/t2t_data --output_dir=~/t2t_train/mnist_fc

  Result on this machine: not measured; the TFDS mnist data cannot be downloaded here (the
  problem's tests run on tfds.testing.mock_data).
  """
  hparams = basic_params1()
  hparams.batch_size = 128  # examples per batch (fixed-size inputs batch by examples)
  hparams.hidden_size = 256
  hparams.num_hidden_layers = 2
  hparams.dropout = 0.0
  hparams.weight_decay = 0.0
  hparams.optimizer = "adam"
  # tensor2tensor uses learning_rate=0.1 with its "legacy" schedule (an exponential warmup
  # over 100 steps). The trainer here has no such schedule, and Adam at a constant 0.1 is
  # far too large for this network; 1e-3 is Adam's usual rate. (Deviation.)
  hparams.learning_rate_schedule = "constant"
  hparams.learning_rate_constant = 1e-3
  hparams.learning_rate_warmup_steps = 100
  return hparams
