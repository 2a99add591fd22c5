"""The transformer's positional options (`pos`, `memory_pos`): cached decoding equals the full
forward pass for each, packed rows read as their separate examples, randomized positions are
sorted, distinct, in range and unused at decode time, and the relative buckets saturate."""
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite import layers
from t2t_lite.decoding import decoder as decoder_lib
from t2t_lite.errors import HParamsError
from t2t_lite.models.transformer import TransformerArgs
from t2t_lite.models.transformer import resolve_hparams
from tests.test_models_transformer import assert_packed_rows_match_unpacked
from tests.test_models_transformer import batch
from tests.test_models_transformer import build
from tests.test_models_transformer import lm_problem
from tests.test_models_transformer import no_dropout
from tests.test_models_transformer import numpy
from tests.test_models_transformer import random_ids
from tests.test_models_transformer import seq2seq_problem
from tests.test_models_transformer import teacher_forced_decode
from tests.test_models_transformer import VOCAB_OUT

# (pos, memory_pos, memory_length_scale)
OPTIONS = [("timing", "none", 0.0), ("emb", "none", 0.0), ("none", "none", 0.0),
           ("random", "none", 0.0), ("relative", "none", 0.0), ("none", "relative", 0.0),
           ("relative", "relative", 0.0), ("random", "relative", 0.0),
           ("relative", "relative", 8.0), ("none", "relative", 8.0)]


def hparams(pos, memory_pos, **overrides):
  return no_dropout(pos=pos, memory_pos=memory_pos, max_length=32, relative_num_buckets=8,
                    relative_max_distance=8, mixed_precision="float32", **overrides)


def randomize_biases(model):
  """The bias tables start at zero: fill them so that a wrong offset changes the logits."""
  rng = np.random.default_rng(3)
  tables = [w for w in model.weights if "table" in w.path]
  for w in tables:
    w.assign(rng.normal(size=w.shape).astype("float32"))
  return tables


@pytest.mark.parametrize("pos,memory_pos,length_scale,max_length",
                         [option + (11,) for option in OPTIONS] +
                         [("relative", "relative", 0.0, None), ("random", "none", 0.0, None)])
@pytest.mark.parametrize("problem", ["seq2seq", "lm"])
def test_cached_decoding_equals_the_full_forward_pass(pos, memory_pos, length_scale, max_length,
                                                      problem):
  """max_length None: a growing cache (the step biases span the positions so far)."""
  rng = np.random.default_rng(5)
  if problem == "seq2seq":
    php, features = seq2seq_problem(), batch(rng, t_in=9, t_out=8)
  else:
    php, features = lm_problem(), {"targets": random_ids(rng, 3, 8, VOCAB_OUT)}
  # With a length scale, one head of the attention over the inputs reads positions alone.
  position_heads = int(memory_pos == "relative" and length_scale > 0)
  model = build(hparams(pos, memory_pos, memory_length_scale=length_scale,
                        memory_position_heads=position_heads), php, features)
  tables = randomize_biases(model)
  expected = {"relative": 2 if problem == "seq2seq" else 1}.get(pos, 0)
  expected += 2 if (memory_pos == "relative" and problem == "seq2seq") else 0
  assert len(tables) == expected
  full = numpy(model(features, training=False))
  stepped = teacher_forced_decode(model, features, max_length=max_length)
  real = features["targets"] > 0
  np.testing.assert_allclose(stepped[real], full[real], atol=1e-4)


@pytest.mark.parametrize("pos,memory_pos,length_scale", [
    ("relative", "relative", 0.0), ("none", "relative", 8.0), ("random", "none", 0.0)])
def test_packed_rows_give_each_example_its_unpacked_logits(pos, memory_pos, length_scale):
  assert_packed_rows_match_unpacked(
      hparams(pos, memory_pos, memory_length_scale=length_scale), randomize_biases)


def test_memory_bias_reads_positions_from_the_inputs_end():
  """The same input padded differently or packed after another example gets the same
  from-the-end positions: n - 1 - i within its example."""
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
  segmentation = np.array([[1, 1, 1, 0, 0], [1, 1, 2, 2, 2]], "int32")
  position = np.array([[0, 1, 2, 0, 0], [0, 1, 0, 1, 2]], "int32")
  start, end = layers.length_relative_positions(mask, position, segmentation)
  np.testing.assert_array_equal(numpy(start), position)
  np.testing.assert_array_equal(numpy(end), [[2, 1, 0, 0, 0], [1, 0, 2, 1, 0]])
  start, end = layers.length_relative_positions(mask[:1])
  np.testing.assert_array_equal(numpy(end), [[2, 1, 0, 0, 0]])


def test_relative_buckets_are_exact_near_zero_and_saturate_far_away():
  offsets = np.arange(-1000, 1001)
  bidirectional = numpy(layers.positions.relative_buckets(offsets, 32, 32))
  assert bidirectional.min() >= 0 and bidirectional.max() < 32
  exact = {o: b for o, b in zip(offsets, bidirectional) if abs(o) < 8}
  assert len(set(exact.values())) == len(exact)  # one bucket per small offset
  # Every offset at or past max_distance shares its direction's last bucket.
  assert set(bidirectional[offsets >= 32]) == {bidirectional[offsets == 32][0]}
  assert set(bidirectional[offsets <= -32]) == {bidirectional[offsets == -32][0]}
  assert bidirectional[offsets == 32][0] != bidirectional[offsets == -32][0]
  # Monotone in the distance within each direction.
  assert np.all(np.diff(bidirectional[offsets >= 0]) >= 0)
  causal = numpy(layers.positions.relative_buckets(offsets, 16, 32, bidirectional=False))
  assert set(causal[offsets >= 0]) == {0}
  assert set(causal[offsets <= -32]) == {15}


def test_random_positions_are_sorted_distinct_and_in_range():
  import keras  # pylint: disable=g-import-not-at-top
  segmentation = np.array([[1] * 5 + [2] * 7 + [3] * 3 + [0] * 1,
                           [1] * 16], "int32")
  position = np.array([list(range(5)) + list(range(7)) + list(range(3)) + [0],
                       list(range(16))], "int32")
  mask = segmentation > 0
  seed = keras.random.SeedGenerator(4)
  draws = []
  for _ in range(20):
    out = numpy(layers.random_positions(position, mask, 40, seed, segmentation))
    assert np.all(out[~mask] == 0)
    for row in range(2):
      for segment in set(segmentation[row]) - {0}:
        values = out[row][segmentation[row] == segment]
        assert np.all(np.diff(values) > 0)             # sorted and distinct
        assert values.min() >= 0 and values.max() < 40  # within [0, range)
    draws.append(out)
  # Random: the draws differ, and they spread over the range, not only 0..n-1.
  assert len({d.tobytes() for d in draws}) > 1
  assert max(d.max() for d in draws) > 25
  # An example as long as the range keeps 0..n-1.
  full = numpy(layers.random_positions(position[1:], mask[1:], 16, seed))
  np.testing.assert_array_equal(full, position[1:])


def test_random_positions_are_used_in_training_only():
  rng = np.random.default_rng(8)
  features = batch(rng)
  model = build(hparams("random", "none"), seq2seq_problem(), features)
  reference = build(hparams("timing", "none"), seq2seq_problem(), features)
  theirs = {w.path.split("/", 1)[1]: w for w in model.weights}
  for w in reference.weights:
    w.assign(theirs[w.path.split("/", 1)[1]])
  # Without dropout, training=True differs from training=False only by the positions.
  trained = numpy(model(features, training=True))
  np.testing.assert_allclose(numpy(model(features, training=False)),
                             numpy(reference(features, training=False)), atol=1e-5)
  assert np.abs(trained - numpy(model(features, training=False))).max() > 1e-3
  decoded = decoder_lib.decode_ids(model, features["inputs"], extra_length=3)["outputs"]
  expected = decoder_lib.decode_ids(reference, features["inputs"], extra_length=3)["outputs"]
  np.testing.assert_array_equal(numpy(decoded), numpy(expected))


@pytest.mark.parametrize("pos,memory_pos", [("relative", "relative")])
def test_relative_options_decode_under_xla_mixed_precision_and_beams(pos, memory_pos):
  rng = np.random.default_rng(9)
  features = batch(rng)
  hp = hparams(pos, memory_pos)
  hp.mixed_precision = "mixed_bfloat16"
  model = build(hp, seq2seq_problem(), features)
  assert model.decoder_blocks[0].compute_dtype == "bfloat16"
  randomize_biases(model)
  inputs = tf.constant(features["inputs"])

  @tf.function(jit_compile=True)
  def run(x):
    return decoder_lib.decode_ids(model, x, beam_size=3, extra_length=4)["outputs"]

  with_xla = numpy(run(inputs))
  without = numpy(decoder_lib.decode_ids(model, inputs, beam_size=3, extra_length=4)[
      "outputs"])
  assert with_xla.shape == without.shape == (3, 3, inputs.shape[1] + 4)
  np.testing.assert_array_equal(with_xla[:, 0], without[:, 0])


def test_a_run_without_the_new_hparams_builds_the_timing_model():
  old = {k: v for k, v in resolve_hparams({}).items()
         if k not in ("pos", "memory_pos", "pos_random_range", "relative_num_buckets",
                      "relative_max_distance")}
  args = TransformerArgs.from_hparams(old)
  assert args.position == "sinusoidal"
  assert not (args.relative_bias or args.memory_relative_bias or args.random_position_range)
  features = batch(np.random.default_rng(1))
  model = build(hparams("timing", "none"), seq2seq_problem(), features)
  assert model.positions is None
  assert not [w for w in model.weights if "table" in w.path]


@pytest.mark.parametrize("field,value", [("pos", "rope"), ("memory_pos", "absolute"),
                                         ("relative_max_distance", 2),
                                         ("memory_position_heads", 3)])
def test_bad_positional_hparams_are_clear_errors(field, value):
  hp = hparams("relative", "relative")
  setattr(hp, field, value)
  # An HParamsError: the scripts print it as one line and exit 2.
  with pytest.raises(HParamsError, match=field if field != "relative_max_distance" else
                     "max_distance"):
    TransformerArgs.from_hparams(hp)


def test_length_set_reads_positions_through_the_attention_over_its_inputs_only():
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  args = TransformerArgs.from_hparams(registry.hparams("transformer_tiny_length"))
  assert args.position is None and not args.relative_bias and not args.random_position_range
  assert args.memory_relative_bias and args.memory_length_scale > 1


def test_bias_tables_and_position_seed_restore_from_a_checkpoint(tmp_path):
  features = batch(np.random.default_rng(2))
  model = build(hparams("random", "relative"), seq2seq_problem(), features)
  randomize_biases(model)
  path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
  restored = build(hparams("random", "relative"), seq2seq_problem(), features)
  tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
  np.testing.assert_allclose(numpy(restored(features, training=False)),
                             numpy(model(features, training=False)), atol=1e-6)
