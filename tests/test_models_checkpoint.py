"""A tf.train.Checkpoint of a model alone holds every weight (what the decoder restores)."""
import numpy as np
import pytest
import tensorflow as tf

import t2t_lite.models  # noqa: F401  pylint: disable=unused-import
from t2t_lite import registry
from t2t_lite.hparams import HParams


def _setup(name):
  if name == "transformer":
    hp = registry.hparams("transformer_tiny")
    hp.parse("hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=2")
    php = HParams(vocab_size={"inputs": 7, "targets": 7},
                  modality={"inputs": "symbol", "targets": "symbol"}, has_inputs=True)
    features = {"inputs": tf.constant([[2, 3, 4, 1]]), "targets": tf.constant([[4, 3, 2, 1]])}
  elif name == "transformer_encoder":
    hp = registry.hparams("transformer_encoder_tiny")
    hp.parse("hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=2")
    php = HParams(vocab_size={"inputs": 9, "targets": 3},
                  modality={"inputs": "symbol", "targets": "class_label"}, has_inputs=True)
    features = {"inputs": tf.constant([[2, 3, 4, 1]]), "targets": tf.constant([1])}
  else:
    hp = registry.hparams("basic_fc_small")
    hp.parse("hidden_size=8,num_hidden_layers=2")
    php = HParams(vocab_size={"inputs": 256, "targets": 3},
                  modality={"inputs": "image", "targets": "class_label"}, has_inputs=True)
    features = {"inputs": tf.random.uniform([1, 4, 4, 1]), "targets": tf.constant([1])}
  return registry.model(name)(hp, php), features


@pytest.mark.parametrize("name", ["transformer", "transformer_encoder", "basic_fc_relu"])
def test_model_checkpoint_holds_every_weight(name, tmp_path):
  model, features = _setup(name)
  expected = model(features, training=False).numpy()
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
  saved = [n for n, _ in tf.train.list_variables(path) if n.startswith("model/")]
  assert len(saved) == len(model.weights), (len(saved), len(model.weights))
  fresh, _ = _setup(name)
  fresh(features, training=False)
  tf.train.Checkpoint(model=fresh).read(path).assert_existing_objects_matched()
  np.testing.assert_allclose(fresh(features, training=False).numpy(), expected, rtol=1e-6)
