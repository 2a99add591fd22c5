"""The registered models: hparams sets, basic_fc_relu, transformer_encoder.

The transformer (encoder-decoder, decoding cache) is tested in test_models_transformer.py.
"""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import t2t_lite.models  # noqa: F401  (registers the models and hparams sets)
from t2t_lite import common_hparams
from t2t_lite import registry
from t2t_lite.errors import HParamsError
from t2t_lite.hparams import HParams
from t2t_lite.models import losses
from t2t_lite.utils import hardware

ALL_SETS = ["basic_fc_small", "transformer_tiny", "transformer_small", "transformer_base",
            "transformer_big", "transformer_tpu", "transformer_encoder_tiny",
            "transformer_encoder_small"]


def image_problem(num_classes=4):
  return HParams(vocab_size={"inputs": 256, "targets": num_classes},
                 modality={"inputs": "image", "targets": "class_label"}, has_inputs=True)


def text_class_problem(vocab=20, num_classes=3):
  return HParams(vocab_size={"inputs": vocab, "targets": num_classes},
                 modality={"inputs": "symbol", "targets": "class_label"}, has_inputs=True)


def encoder_hparams(**overrides):
  hp = registry.hparams("transformer_encoder_tiny")
  hp.hidden_size = 16
  hp.filter_size = 32
  hp.num_heads = 2
  hp.num_hidden_layers = 1
  for k, v in overrides.items():
    setattr(hp, k, v)
  return hp


def fc_hparams(**overrides):
  hp = registry.hparams("basic_fc_small")
  hp.hidden_size = 32
  for k, v in overrides.items():
    setattr(hp, k, v)
  return hp


def random_ids(rng, batch, length, vocab):
  """Ids in [1, vocab) with a random amount of 0-padding at the end of each row."""
  ids = rng.integers(1, vocab, size=(batch, length)).astype("int32")
  for row, n in enumerate(rng.integers(1, length + 1, size=batch)):
    ids[row, n:] = 0
  return ids


def assert_save_load_round_trip(model, features, tmp_path):
  """get_config/from_config gives the same architecture; .keras save/load the same outputs."""
  expected = keras.ops.convert_to_numpy(model(features, training=False))
  clone = type(model).from_config(model.get_config())
  clone(features, training=False)
  assert clone.count_params() == model.count_params()
  assert clone.get_config()["hparams"] == model.get_config()["hparams"]
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert type(loaded) is type(model)
  got = keras.ops.convert_to_numpy(loaded(features, training=False))
  np.testing.assert_allclose(got, expected, atol=1e-6)


def train_to_fit(model, features, steps, learning_rate):
  """A plain GradientTape loop with Adam in tf.function; returns the final loss."""
  optimizer = keras.optimizers.Adam(learning_rate)
  model(features, training=False)  # build
  optimizer.build(model.trainable_variables)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      logits = model(features, training=True)
      loss_sum, weight_sum = model.loss_sum(logits, features)
      loss = loss_sum / weight_sum
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  for _ in range(steps):
    loss = step()
  return float(loss)


# --- hparams sets --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SETS)
def test_every_set_is_registered_documented_and_fresh(name):
  hp = registry.hparams(name)
  assert hp.values() == registry.hparams(name).values()
  hp.hidden_size = 3
  assert registry.hparams(name).hidden_size != 3  # a new object on every call
  doc = inspect.getdoc(registry.hparams_function(name))
  assert "t2t-trainer " in doc and "--problem=" in doc and "--model=" in doc
  assert "--hparams_set=%s" % name in doc and "--train_steps=" in doc
  # Every set says what it reached here, or why it was not measured; no placeholder left.
  result = doc.split("Result on this machine", 1)[1]
  assert "TBD" not in result and len(result.split()) >= 5
  base = registry.hparams("basic_params1").values()
  assert set(base) <= set(hp.values())  # every set extends basic_params1


def test_transformer_sets_have_tensor2tensor_sizes():
  sizes = {name: tuple(getattr(registry.hparams(name), k) for k in
                       ("hidden_size", "num_hidden_layers", "filter_size", "num_heads"))
           for name in ("transformer_tiny", "transformer_small", "transformer_base",
                        "transformer_big", "transformer_tpu")}
  assert sizes == {"transformer_tiny": (128, 2, 512, 4), "transformer_small": (256, 2, 1024, 4),
                   "transformer_base": (512, 6, 2048, 8), "transformer_big": (1024, 6, 4096, 16),
                   "transformer_tpu": (512, 6, 2048, 8)}
  base = registry.hparams("transformer_base")
  assert (base.batch_size, base.learning_rate_schedule, base.learning_rate_warmup_steps) == (
      4096, "noam", 4000)
  assert (base.layer_prepostprocess_dropout, base.attention_dropout, base.relu_dropout,
          base.label_smoothing) == (0.1, 0.1, 0.1, 0.1)
  assert base.shared_embedding_and_softmax_weights is True
  assert registry.hparams("transformer_big").layer_prepostprocess_dropout == 0.3
  tpu = registry.hparams("transformer_tpu")
  assert (tpu.fixed_batch_shapes, tpu.mixed_precision, tpu.optimizer) == (
      True, "mixed_bfloat16", "adafactor")


# --- basic_fc_relu -------------------------------------------------------------------------


def test_basic_fc_relu_shapes_and_parameter_count():
  model = registry.model("basic_fc_relu")(fc_hparams(num_hidden_layers=2), image_problem(4))
  images = np.random.default_rng(0).random((3, 6, 6, 1)).astype("float32")
  logits = model({"inputs": images, "targets": np.zeros(3, "int32")}, training=False)
  assert tuple(logits.shape) == (3, 4)
  assert keras.backend.standardize_dtype(logits.dtype) == "float32"
  assert model.count_params() == (36 * 32 + 32) + (32 * 32 + 32) + (32 * 4 + 4)
  from t2t_lite.layers.dense import Dense
  assert all(isinstance(layer, Dense) for layer in model.hidden_layers)


def test_basic_fc_relu_dropout_only_in_training():
  model = registry.model("basic_fc_relu")(fc_hparams(dropout=0.5), image_problem(4))
  features = {"inputs": np.random.default_rng(1).random((4, 5, 5, 1)).astype("float32")}
  a = keras.ops.convert_to_numpy(model(features, training=False))
  b = keras.ops.convert_to_numpy(model(features, training=False))
  c = keras.ops.convert_to_numpy(model(features, training=True))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_basic_fc_relu_save_load(tmp_path):
  model = registry.model("basic_fc_relu")(fc_hparams(), image_problem(3))
  features = {"inputs": np.random.default_rng(2).random((2, 4, 4, 1)).astype("float32")}
  assert_save_load_round_trip(model, features, tmp_path)


def test_basic_fc_relu_overfits_8_examples():
  rng = np.random.default_rng(3)
  features = {"inputs": rng.random((8, 6, 6, 1)).astype("float32"),
              "targets": rng.integers(0, 5, size=8).astype("int32")}
  hp = fc_hparams(label_smoothing=0.0)
  model = registry.model("basic_fc_relu")(hp, image_problem(5))
  loss = train_to_fit(model, features, steps=150, learning_rate=1e-2)
  predictions = np.argmax(keras.ops.convert_to_numpy(model(features, training=False)), -1)
  np.testing.assert_array_equal(predictions, features["targets"])
  assert loss < 0.05


def test_models_give_float32_logits_under_a_mixed_policy():
  hp = fc_hparams(mixed_precision="mixed_bfloat16")
  model = registry.model("basic_fc_relu")(hp, image_problem(3))
  logits = model({"inputs": np.ones((2, 4, 4, 1), "float32")}, training=False)
  assert keras.backend.standardize_dtype(logits.dtype) == "float32"
  dense = model.hidden_layers[0]
  assert dense.compute_dtype == "bfloat16" and dense.variable_dtype == "float32"


@pytest.mark.parametrize("native, compute", [(True, "bfloat16"), (False, "float32")])
def test_auto_mixed_precision_follows_the_hardware(monkeypatch, native, compute):
  monkeypatch.setattr(hardware, "native_bfloat16", lambda: native)
  assert common_hparams.dtype_policy("auto") == ("mixed_bfloat16" if native else None)
  model = registry.model("basic_fc_relu")(fc_hparams(mixed_precision="auto"), image_problem(3))
  logits = model({"inputs": np.ones((2, 4, 4, 1), "float32")}, training=False)
  assert keras.backend.standardize_dtype(logits.dtype) == "float32"
  dense = model.hidden_layers[0]
  assert (dense.compute_dtype, dense.variable_dtype) == (compute, "float32")


@pytest.mark.parametrize("native, accelerator, policy", [
    (True, False, None), (True, True, "mixed_bfloat16"), (False, True, None)])
def test_auto_mixed_precision_for_decoding(monkeypatch, native, accelerator, policy):
  # On a CPU decoding runs XLA-compiled, where float32 is the faster: "auto" decodes in it.
  monkeypatch.setattr(hardware, "native_bfloat16", lambda: native)
  monkeypatch.setattr(hardware, "accelerator", lambda: accelerator)
  assert common_hparams.dtype_policy("auto", inference=True) == policy
  assert common_hparams.dtype_policy("mixed_bfloat16", inference=True) == "mixed_bfloat16"


def test_mixed_precision_values():
  assert common_hparams.dtype_policy("") is None
  assert common_hparams.dtype_policy("float32") is None
  assert common_hparams.dtype_policy("mixed_float16") == "mixed_float16"
  with pytest.raises(HParamsError, match="mixed_precision=bf16: unknown"):
    common_hparams.dtype_policy("bf16")


def test_cpu_flags_read_from_cpuinfo(tmp_path, monkeypatch):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
                     "processor\t: 1\nflags\t\t: fpu\n")
  assert hardware.cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512f", "avx512_bf16"}
  assert hardware.cpu_flags(str(tmp_path / "missing")) == set()
  # Without an accelerator the answer is the CPU's flags.
  monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
  monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
  monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
  for flags, native in (({"avx2", "avx512_bf16"}, True), ({"amx_bf16"}, True),
                        ({"avx2", "avx512f"}, False)):
    monkeypatch.setattr(hardware, "cpu_flags", lambda flags=flags: flags)
    hardware.native_bfloat16.cache_clear()
    try:
      assert hardware.native_bfloat16() is native
    finally:
      hardware.native_bfloat16.cache_clear()


@pytest.mark.parametrize("policy, accelerator, onednn, options", [
    ("mixed_bfloat16", False, "1", {"remapping": False}),
    ("mixed_bfloat16", True, "1", {}), ("mixed_bfloat16", False, "0", {}),
    (None, False, "1", {}), ("mixed_float16", False, "1", {})])
def test_graph_options_turn_off_the_bias_fusion_only_for_bfloat16_on_a_onednn_cpu(
    monkeypatch, policy, accelerator, onednn, options):
  monkeypatch.setattr(hardware, "accelerator", lambda: accelerator)
  monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
  assert hardware.graph_options(policy) == options


def test_graph_options_scope_sets_and_restores():
  def remapping():
    return tf.config.optimizer.get_experimental_options().get("remapping", True)
  before = remapping()
  with hardware.graph_options_scope({"remapping": False}):
    assert remapping() is False
    with hardware.graph_options_scope({}):
      assert remapping() is False
  assert remapping() == before
  with pytest.raises(RuntimeError):
    with hardware.graph_options_scope({"remapping": False}):
      raise RuntimeError("the options are restored on errors too")
  assert remapping() == before


def test_missing_inputs_is_a_clear_error():
  model = registry.model("basic_fc_relu")(fc_hparams(), image_problem(3))
  with pytest.raises(ValueError, match="no 'inputs'"):
    model({"targets": np.zeros((2,), "int32")})


# --- transformer_encoder -------------------------------------------------------------------


@pytest.mark.parametrize("patch_size", [0, 2])
def test_transformer_encoder_on_images_rows_or_patches(patch_size):
  model = registry.model("transformer_encoder")(
      encoder_hparams(image_patch_size=patch_size), image_problem(10))
  images = np.random.default_rng(4).random((2, 8, 8, 1)).astype("float32")
  logits = model({"inputs": images}, training=False)
  assert tuple(logits.shape) == (2, 10)
  assert keras.backend.standardize_dtype(logits.dtype) == "float32"
  # A row is 8 pixels x 1 channel; a 2x2 patch is 4 pixels x 1 channel.
  assert model.input_projection.kernel.shape == ((2 * 2 if patch_size else 8), 16)


def test_image_to_sequence_rows_and_patches():
  from t2t_lite.models.transformer_encoder import image_to_sequence
  images = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3).astype("float32")
  rows = keras.ops.convert_to_numpy(image_to_sequence(images))
  np.testing.assert_array_equal(rows, images.reshape(2, 4, 12))
  patches = keras.ops.convert_to_numpy(image_to_sequence(images, 2))
  assert patches.shape == (2, 4, 12)
  np.testing.assert_array_equal(patches[1, 3], images[1, 2:4, 2:4, :].reshape(-1))


def test_transformer_encoder_on_text_ignores_padding():
  model = registry.model("transformer_encoder")(encoder_hparams(), text_class_problem())
  ids = np.array([[3, 4, 5, 0, 0], [7, 2, 0, 0, 0]], "int32")
  logits = keras.ops.convert_to_numpy(model({"inputs": ids}, training=False))
  assert logits.shape == (2, 3)
  # Longer padding changes nothing: padded positions are masked out and not pooled.
  longer = np.pad(ids, ((0, 0), (0, 4)))
  again = keras.ops.convert_to_numpy(model({"inputs": longer}, training=False))
  np.testing.assert_allclose(again, logits, atol=1e-5)


def test_transformer_encoder_save_load(tmp_path):
  model = registry.model("transformer_encoder")(encoder_hparams(), text_class_problem())
  ids = random_ids(np.random.default_rng(5), 3, 6, 20)
  assert_save_load_round_trip(model, {"inputs": ids}, tmp_path)


def test_transformer_encoder_overfits_8_examples():
  rng = np.random.default_rng(6)
  features = {"inputs": random_ids(rng, 8, 6, 20),
              "targets": rng.integers(0, 3, size=8).astype("int32")}
  hp = encoder_hparams(label_smoothing=0.0, layer_prepostprocess_dropout=0.0,
                       attention_dropout=0.0, relu_dropout=0.0, dropout=0.0)
  model = registry.model("transformer_encoder")(hp, text_class_problem())
  train_to_fit(model, features, steps=150, learning_rate=1e-2)
  predictions = np.argmax(keras.ops.convert_to_numpy(model(features, training=False)), -1)
  np.testing.assert_array_equal(predictions, features["targets"])


def test_model_loss_for_a_classifier():
  model = registry.model("transformer_encoder")(encoder_hparams(label_smoothing=0.0),
                                                text_class_problem())
  features = {"inputs": np.array([[3, 4, 0]], "int32"), "targets": np.array([0], "int32")}
  logits = model(features, training=False)
  loss_sum, weight_sum = model.loss_sum(logits, features)
  assert float(weight_sum) == 1.0
  logp = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits))
  np.testing.assert_allclose(float(loss_sum), -logp[0, 0], rtol=1e-5)
  assert losses.model_loss(logits, features, model.problem_hparams, model.hparams)[0] == (
      loss_sum)
