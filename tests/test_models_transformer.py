"""The transformer: teacher forcing, masking, the decoding cache, size, saving, training."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import t2t_lite.models  # noqa: F401  (registers the models and hparams sets)
from t2t_lite import registry
from t2t_lite.hparams import HParams
from t2t_lite.models import transformer_hparams
from t2t_lite.models.transformer import LEGACY_HPARAMS
from t2t_lite.models.transformer import TransformerArgs
from t2t_lite.models.transformer import shift_right

VOCAB_IN, VOCAB_OUT = 11, 13


def seq2seq_problem(vocab_in=VOCAB_IN, vocab_out=VOCAB_OUT):
  return HParams(vocab_size={"inputs": vocab_in, "targets": vocab_out},
                 modality={"inputs": "symbol", "targets": "symbol"}, has_inputs=True)


def lm_problem(vocab=VOCAB_OUT):
  return HParams(vocab_size={"targets": vocab}, modality={"targets": "symbol"},
                 has_inputs=False)


def small_hparams(**overrides):
  """transformer_tiny's set with test sizes (hidden 16, 2 heads, 2 layers)."""
  hp = registry.hparams("transformer_tiny")
  hp.hidden_size = 16
  hp.filter_size = 32
  hp.num_heads = 2
  hp.num_hidden_layers = 2
  for k, v in overrides.items():
    setattr(hp, k, v)
  return hp


def no_dropout(**overrides):
  return small_hparams(layer_prepostprocess_dropout=0.0, attention_dropout=0.0,
                       relu_dropout=0.0, **overrides)


def random_ids(rng, batch, length, vocab, min_length=1):
  """Ids in [2, vocab) ending in EOS=1, then 0-padding; the lengths vary by row."""
  ids = np.zeros((batch, length), "int32")
  for row in range(batch):
    n = int(rng.integers(min_length, length))
    ids[row, :n] = rng.integers(2, vocab, size=n)
    ids[row, n] = 1
  return ids


def batch(rng, b=3, t_in=7, t_out=6):
  return {"inputs": random_ids(rng, b, t_in, VOCAB_IN),
          "targets": random_ids(rng, b, t_out, VOCAB_OUT)}


def numpy(x):
  return keras.ops.convert_to_numpy(x)


def build(hp, problem, features):
  model = registry.model("transformer")(hp, problem)
  model(features, training=False)
  return model


# --- the forward pass ----------------------------------------------------------------------


def test_shift_right():
  np.testing.assert_array_equal(numpy(shift_right(np.array([[5, 6, 7], [8, 1, 0]]))),
                                [[0, 5, 6], [0, 8, 1]])


def test_hparams_sets_are_registered_with_the_model():
  from t2t_lite.models import transformer_hparams  # pylint: disable=g-import-not-at-top
  for name in ("transformer_base", "transformer_big", "transformer_small", "transformer_tiny",
               "transformer_tpu"):
    assert registry.hparams_function(name) is getattr(transformer_hparams, name)
  tiny = registry.hparams("transformer_tiny")
  assert (tiny.hidden_size, tiny.num_hidden_layers, tiny.filter_size, tiny.num_heads,
          tiny.batch_size, tiny.packed_length, tiny.learning_rate_schedule) == (
              128, 2, 512, 4, 768, 64, "wsd")


def test_seq2seq_logits_shape_dtype():
  features = batch(np.random.default_rng(0))
  model = build(small_hparams(), seq2seq_problem(), features)
  logits = model(features, training=True)
  assert tuple(logits.shape) == (3, 6, VOCAB_OUT)
  assert keras.backend.standardize_dtype(logits.dtype) == "float32"


def test_decoder_is_causal_and_encoder_ignores_padding():
  rng = np.random.default_rng(1)
  features = batch(rng)
  model = build(no_dropout(), seq2seq_problem(), features)
  logits = numpy(model(features, training=False))
  # Changing target t changes only the logits after t (the decoder reads targets shifted).
  changed = dict(features, targets=features["targets"].copy())
  changed["targets"][:, 3] = (changed["targets"][:, 3] + 1) % VOCAB_OUT
  other = numpy(model(changed, training=False))
  np.testing.assert_allclose(other[:, :4], logits[:, :4], atol=1e-5)
  assert not np.allclose(other[:, 4:], logits[:, 4:], atol=1e-3)
  # More padding after the inputs changes nothing.
  padded = dict(features, inputs=np.pad(features["inputs"], ((0, 0), (0, 5))))
  np.testing.assert_allclose(numpy(model(padded, training=False)), logits, atol=1e-5)
  # The inputs matter.
  other_inputs = dict(features, inputs=np.where(features["inputs"] > 1, 2, features["inputs"]))
  assert not np.allclose(numpy(model(other_inputs, training=False)), logits, atol=1e-3)


def test_dropout_is_active_only_in_training():
  features = batch(np.random.default_rng(2))
  hp = small_hparams(layer_prepostprocess_dropout=0.1, attention_dropout=0.1, relu_dropout=0.1)
  model = build(hp, seq2seq_problem(), features)
  a, b = numpy(model(features, training=False)), numpy(model(features, training=False))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(numpy(model(features, training=True)), a)


def test_language_model_has_no_encoder():
  rng = np.random.default_rng(3)
  features = {"targets": random_ids(rng, 2, 5, VOCAB_OUT)}
  model = build(no_dropout(), lm_problem(), features)
  assert tuple(model(features).shape) == (2, 5, VOCAB_OUT)
  assert not model.encoder_blocks and model.input_embedding is None
  assert not any("encoder" in w.path or "memory" in w.path or "cross" in w.path
                 for w in model.weights), [w.path for w in model.weights]
  with pytest.raises(ValueError, match="no inputs"):
    model.encode(features["targets"])


def test_missing_targets_is_a_clear_error():
  model = registry.model("transformer")(small_hparams(), seq2seq_problem())
  with pytest.raises(ValueError, match="no 'targets'"):
    model({"inputs": np.ones((1, 3), "int32")})


def test_shared_embedding_and_softmax_weights():
  features = batch(np.random.default_rng(4))
  tied = build(no_dropout(shared_embedding_and_softmax_weights=True), seq2seq_problem(),
               features)
  untied = build(no_dropout(shared_embedding_and_softmax_weights=False), seq2seq_problem(),
                 features)
  assert tied.output_projection is None
  assert untied.count_params() - tied.count_params() == 16 * VOCAB_OUT + VOCAB_OUT
  # The logits are the decoder output times the target embedding table.
  tied.target_embedding.embeddings.assign(tied.target_embedding.embeddings * 2.0)
  assert tuple(tied(features).shape) == (3, 6, VOCAB_OUT)


def test_post_norm_has_no_final_layer_norms_and_decodes_like_the_full_call():
  rng = np.random.default_rng(11)
  features = batch(rng)
  post = build(no_dropout(layer_preprocess_sequence="", layer_postprocess_sequence="dan"),
               seq2seq_problem(), features)
  pre = build(no_dropout(), seq2seq_problem(), features)
  assert not post.norm_first and pre.norm_first
  assert not any(name in w.path for w in post.weights
                 for name in ("encoder_norm", "decoder_norm"))
  # Same weights but the two final norms (scale and offset, 16 wide each).
  assert pre.count_params() - post.count_params() == 2 * 2 * 16
  np.testing.assert_allclose(teacher_forced_decode(post, features, max_length=9),
                             numpy(post(features, training=False)), atol=1e-4)
  with pytest.raises(ValueError, match="post-norm"):
    registry.model("transformer")(small_hparams(layer_postprocess_sequence="dna"),
                                  seq2seq_problem())


def test_embedding_scale_and_initializer_hparams():
  features = batch(np.random.default_rng(12))
  model = build(small_hparams(multiply_embedding_mode="none", initializer="ones",
                              shared_embedding_and_softmax_weights=False),
                seq2seq_problem(), features)
  assert not model.target_embedding.scale and not model.input_embedding.scale
  kernels = [w for w in model.weights if w.path.endswith("kernel")]
  assert len(kernels) == 2 * 4 + 2 * 7 + 1  # encoder and decoder blocks, output projection
  for kernel in kernels:
    np.testing.assert_array_equal(numpy(kernel), 1.0)
  default = build(small_hparams(), seq2seq_problem(), features)
  assert default.target_embedding.scale
  # fan_in_uniform: within +-1/sqrt(16) for the hidden-size-16 kernels
  assert np.abs(numpy(default.decoder_blocks[0]._ffn_inner.kernel)).max() <= 0.25
  t2t = TransformerArgs.from_hparams(small_hparams(initializer="uniform_unit_scaling",
                                                   initializer_gain=2.0)).kernel_initializer()
  assert (t2t.scale, t2t.mode, t2t.distribution) == (2.0, "fan_avg", "uniform")
  for bad in (dict(initializer="no_such_init"), dict(multiply_embedding_mode="sqrt")):
    with pytest.raises(ValueError):
      registry.model("transformer")(small_hparams(**bad), seq2seq_problem())


def pack(rows_of_examples, length):
  """Packs lists of (inputs, targets) id lists into rows: t2t's packed features."""
  names = ("inputs", "targets")
  out = {n + suffix: np.zeros((len(rows_of_examples), length), "int32")
         for n in names for suffix in ("", "_segmentation", "_position")}
  for r, examples in enumerate(rows_of_examples):
    for n, i in zip(names, (0, 1)):
      start = 0
      for segment, example in enumerate(examples, 1):
        ids = example[i]
        out[n][r, start:start + len(ids)] = ids
        out[n + "_segmentation"][r, start:start + len(ids)] = segment
        out[n + "_position"][r, start:start + len(ids)] = np.arange(len(ids))
        start += len(ids)
  return out


@pytest.mark.parametrize("pos,norm", [("timing", "n"), ("emb", "")])
def test_packed_rows_give_each_example_its_unpacked_logits(pos, norm):
  assert_packed_rows_match_unpacked(no_dropout(
      pos=pos, max_length=32, layer_preprocess_sequence=norm,
      layer_postprocess_sequence="da" if norm else "dan"))


def assert_packed_rows_match_unpacked(hp, prepare=lambda model: None):
  """Three examples packed in two rows give the logits each gives alone (`prepare(model)`
  runs on the built model first)."""
  rng = np.random.default_rng(13)
  examples = []
  for n_in, n_out in ((3, 4), (5, 2), (2, 3)):
    examples.append((list(rng.integers(2, VOCAB_IN, n_in - 1)) + [1],
                     list(rng.integers(2, VOCAB_OUT, n_out - 1)) + [1]))
  packed = pack([examples[:2], examples[2:]], length=12)
  model = build(hp, seq2seq_problem(), packed)
  prepare(model)
  logits = numpy(model(packed, training=False))
  for (row, segment), (inputs, targets) in zip([(0, 1), (0, 2), (1, 1)], examples):
    alone = numpy(model({"inputs": np.array([inputs]), "targets": np.array([targets])},
                        training=False))[0]
    where = packed["targets_segmentation"][row] == segment
    np.testing.assert_allclose(logits[row][where], alone, atol=1e-4)


def test_shared_source_target_embedding_needs_equal_vocabularies():
  with pytest.raises(ValueError, match="equal input and target"):
    registry.model("transformer")(small_hparams(shared_embedding=True), seq2seq_problem())
  same = seq2seq_problem(VOCAB_OUT, VOCAB_OUT)
  features = batch(np.random.default_rng(5))
  model = build(small_hparams(shared_embedding=True), same, features)
  assert model.input_embedding is None


# --- size ----------------------------------------------------------------------------------


def transformer_parameter_count(vocab_in, vocab_out, d, f, layers, shared_softmax,
                                attention_bias=False):
  """Closed form for the transformer's weights (every feed-forward dense has a bias, the
  attention projections only with attention_bias, every norm has a scale and an offset):

    embeddings       V_in*d + V_out*d
    encoder layer    2 norms (2*2d) + self-attention (d*3d + d*d, biases 3d + d) + FFN
                     (d*f + f + f*d + d)
    decoder layer    3 norms (3*2d) + self-attention + attention over memory
                     (query d*d + d, key/value d*2d + 2d, output d*d + d) + FFN
    final norms      2 * 2d
    softmax          d*V_out + V_out unless tied to the target embedding
  """
  attention = 4 * d * d + (4 * d if attention_bias else 0)
  ffn = 2 * d * f + f + d
  encoder_layer = 2 * 2 * d + attention + ffn
  decoder_layer = 3 * 2 * d + 2 * attention + ffn
  total = (vocab_in + vocab_out) * d + layers * (encoder_layer + decoder_layer) + 2 * 2 * d
  if not shared_softmax:
    total += d * vocab_out + vocab_out
  return total


@pytest.mark.parametrize("shared, attention_bias", [(True, False), (False, False),
                                                    (True, True), (False, None)])
def test_transformer_tiny_parameter_count(shared, attention_bias):
  hp = registry.hparams("transformer_tiny")
  hp.shared_embedding_and_softmax_weights = shared
  if attention_bias is None:
    # hparams saved before attention_use_bias existed: the biases their checkpoints hold.
    hp.del_hparam("attention_use_bias")
  else:
    hp.attention_use_bias = attention_bias
  features = {"inputs": np.ones((1, 2), "int32"), "targets": np.ones((1, 2), "int32")}
  model = build(hp, seq2seq_problem(), features)
  expected = transformer_parameter_count(VOCAB_IN, VOCAB_OUT, d=128, f=512, layers=2,
                                         shared_softmax=shared,
                                         attention_bias=attention_bias in (True, None))
  assert model.count_params() == expected


# --- decoding ------------------------------------------------------------------------------


def teacher_forced_decode(model, features, max_length):
  """decode_step over the shifted targets, position by position, in one tf.while_loop;
  max_length=None: with a growing cache."""
  targets = tf.constant(features["targets"])
  batch_size = targets.shape[0]
  decoder_input = shift_right(targets)
  grows = max_length is None

  @tf.function
  def run():
    if model.has_inputs:
      encoder_output, encoder_mask = model.encode(tf.constant(features["inputs"]))
      cache = model.init_decode_cache(batch_size, max_length, encoder_output, encoder_mask)
    else:
      cache = model.init_decode_cache(batch_size, max_length)
    logits = tf.TensorArray(tf.float32, size=targets.shape[1])

    def body(i, cache, logits):
      step_logits, cache = model.decode_step(decoder_input[:, i], cache, i, cache_grows=grows)
      return i + 1, cache, logits.write(i, step_logits)

    def invariant(t):  # a growing cache changes its length axis (2) at every step
      if isinstance(t, tf.Tensor) and t.shape.rank == 4:
        return tf.TensorShape([None if axis == 2 else d for axis, d in enumerate(t.shape)])
      return t.shape if isinstance(t, tf.Tensor) else tf.TensorShape(None)

    state = (tf.constant(0), cache, logits)
    _, _, logits = tf.while_loop(
        lambda i, *_: i < targets.shape[1], body, state,
        shape_invariants=tf.nest.map_structure(invariant, state) if grows else None)
    return tf.transpose(logits.stack(), (1, 0, 2))

  return run().numpy()


@pytest.mark.parametrize("max_length", [9, None])
@pytest.mark.parametrize("problem", ["seq2seq", "lm"])
def test_decode_step_matches_the_full_call(problem, max_length):
  rng = np.random.default_rng(6)
  if problem == "seq2seq":
    php, features = seq2seq_problem(), batch(rng)
  else:
    php, features = lm_problem(), {"targets": random_ids(rng, 3, 6, VOCAB_OUT)}
  model = build(small_hparams(shared_embedding_and_softmax_weights=problem == "lm"), php,
                features)
  full = numpy(model(features, training=False))
  stepped = teacher_forced_decode(model, features, max_length=max_length)
  assert stepped.shape == full.shape
  np.testing.assert_allclose(stepped, full, atol=1e-4)


def test_decode_cache_structure():
  features = batch(np.random.default_rng(7), b=2)
  model = build(small_hparams(), seq2seq_problem(), features)
  encoder_output, encoder_mask = model.encode(features["inputs"])
  assert tuple(encoder_output.shape) == (2, 7, 16)
  np.testing.assert_array_equal(numpy(encoder_mask), features["inputs"] != 0)
  cache = model.init_decode_cache(2, 10, encoder_output, encoder_mask)
  assert set(cache) == {"self_attention", "memory_kv", "memory_mask"}
  assert len(cache["self_attention"]) == len(cache["memory_kv"]) == 2
  for leaf in tf.nest.flatten(cache):
    assert leaf.shape[0] == 2  # batch first: a beam search tiles and gathers axis 0
  logits, new_cache = model.decode_step(np.zeros(2, "int32"), cache, 0)
  assert tuple(logits.shape) == (2, VOCAB_OUT)
  tf.nest.assert_same_structure(cache, new_cache)
  for old, new in zip(tf.nest.flatten(cache), tf.nest.flatten(new_cache)):
    assert old.shape == new.shape and old.dtype == new.dtype
  # The memory keys/values are computed once and passed through unchanged.
  for old, new in zip(tf.nest.flatten(cache["memory_kv"]), tf.nest.flatten(new_cache["memory_kv"])):
    assert old is new


# --- saving, precision, training -----------------------------------------------------------


def test_save_load_and_config_round_trip(tmp_path):
  features = batch(np.random.default_rng(8))
  model = build(small_hparams(), seq2seq_problem(), features)
  expected = numpy(model(features, training=False))
  config = model.get_config()
  assert isinstance(config["hparams"], dict) and isinstance(config["problem_hparams"], dict)
  clone = type(model).from_config(config)
  clone(features)
  assert clone.count_params() == model.count_params()
  path = str(tmp_path / "transformer.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_allclose(numpy(loaded(features, training=False)), expected, atol=1e-6)
  assert loaded.hparams.hidden_size == 16


def test_mixed_bfloat16_gives_float32_logits_and_decodes():
  features = batch(np.random.default_rng(9))
  model = build(small_hparams(mixed_precision="mixed_bfloat16"), seq2seq_problem(), features)
  logits = model(features, training=True)
  assert keras.backend.standardize_dtype(logits.dtype) == "float32"
  assert all(w.dtype == "float32" for w in model.weights)
  assert model.decoder_blocks[0].compute_dtype == "bfloat16"
  encoder_output, encoder_mask = model.encode(features["inputs"])
  cache = model.init_decode_cache(3, 6, encoder_output, encoder_mask)
  step_logits, _ = model.decode_step(np.zeros(3, "int32"), cache, 0)
  assert keras.backend.standardize_dtype(step_logits.dtype) == "float32"
  np.testing.assert_allclose(numpy(step_logits), numpy(model(features))[:, 0], atol=0.1)


def test_overfits_8_examples_to_100_percent():
  """A tiny transformer learns to reverse 8 sequences exactly (teacher forcing)."""
  rng = np.random.default_rng(10)
  inputs = random_ids(rng, 8, 7, VOCAB_IN, min_length=3)
  targets = np.zeros_like(inputs)
  for row in range(8):
    n = int(np.argmax(inputs[row] == 1))
    targets[row, :n] = inputs[row, :n][::-1]
    targets[row, n] = 1
  features = {"inputs": inputs, "targets": targets}
  hp = no_dropout(label_smoothing=0.0, hidden_size=32, filter_size=64)
  model = build(hp, seq2seq_problem(VOCAB_IN, VOCAB_IN), features)
  optimizer = keras.optimizers.Adam(3e-3)
  optimizer.build(model.trainable_variables)

  @tf.function
  def train_step():
    with tf.GradientTape() as tape:
      loss_sum, weight_sum = model.loss_sum(model(features, training=True), features)
      loss = loss_sum / weight_sum
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  for _ in range(300):
    loss = train_step()
  predictions = np.argmax(numpy(model(features, training=False)), -1)
  real = targets != 0
  assert (predictions[real] == targets[real]).mean() == 1.0, float(loss)


# --- hparams -> layer arguments --------------------------------------------------------------


def test_transformer_args_have_no_defaults_of_their_own():
  """Every default lives in the hparams set: TransformerArgs' fields have none."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  for field in dataclasses.fields(TransformerArgs):
    assert field.default is dataclasses.MISSING, field.name
  common = transformer_hparams.transformer_common()
  args = TransformerArgs.from_hparams(common)
  assert (args.dropout, args.attention_dropout, args.relu_dropout) == (
      common.layer_prepostprocess_dropout, common.attention_dropout, common.relu_dropout)
  assert args.attention_use_bias is False


def test_a_partial_hparams_takes_the_sets_values_not_zero_dropouts():
  partial = {"hidden_size": 16, "num_heads": 2, "filter_size": 32, "num_hidden_layers": 1}
  args = TransformerArgs.from_hparams(partial)
  common = transformer_hparams.transformer_common()
  assert args.dropout == common.layer_prepostprocess_dropout == 0.1
  assert args.attention_dropout == common.attention_dropout == 0.1
  assert args.relu_dropout == common.relu_dropout == 0.1
  model = registry.model("transformer")(partial, seq2seq_problem())
  block_config = model.decoder_blocks[0].get_config()
  assert (block_config["dropout"], block_config["attention_dropout"],
          block_config["relu_dropout"]) == (0.1, 0.1, 0.1)


def test_old_hparams_json_builds_the_model_it_trained_and_restores_its_checkpoint(tmp_path):
  """An hparams.json saved before the LEGACY_HPARAMS keys existed: same variables, same
  numbers as the model built with those keys' legacy values spelt out."""
  features = batch(np.random.default_rng(5))
  explicit = small_hparams(**LEGACY_HPARAMS)
  old = small_hparams()
  for name in LEGACY_HPARAMS:
    old.del_hparam(name)
  assert TransformerArgs.from_hparams(old) == TransformerArgs.from_hparams(explicit)
  reference = build(explicit, seq2seq_problem(), features)
  path = tf.train.Checkpoint(model=reference).write(str(tmp_path / "ckpt"))
  restored = build(old, seq2seq_problem(), features)
  def paths(model):
    return [w.path.split("/", 1)[1] for w in model.weights]  # without the model's own name
  assert paths(restored) == paths(reference)
  tf.train.Checkpoint(model=restored).read(path).assert_consumed()
  np.testing.assert_allclose(numpy(restored(features, training=False)),
                             numpy(reference(features, training=False)), rtol=1e-6)
  # The sets' own values differ from the legacy ones only in the attention biases.
  current = TransformerArgs.from_hparams(small_hparams())
  assert current == dataclasses_replace(TransformerArgs.from_hparams(old),
                                        attention_use_bias=False)


def dataclasses_replace(args, **changes):
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(args, **changes)


def test_encoder_model_shares_the_transformers_encoder_blocks():
  hp = small_hparams(layer_preprocess_sequence="", layer_postprocess_sequence="dan")
  features = batch(np.random.default_rng(6))
  transformer = build(hp, seq2seq_problem(), features)
  php = HParams(vocab_size={"inputs": VOCAB_IN, "targets": 3},
                modality={"inputs": "symbol", "targets": "class_label"}, has_inputs=True)
  encoder = registry.model("transformer_encoder")(hp, php)
  encoder({"inputs": features["inputs"]}, training=False)
  assert len(encoder.encoder_blocks) == len(transformer.encoder_blocks)
  for ours, theirs in zip(encoder.encoder_blocks, transformer.encoder_blocks):
    assert type(ours) is type(theirs)
    assert ours.get_config() == theirs.get_config()
  assert type(encoder.encoder_norm) is type(transformer.encoder_norm)
