"""A tiny in-memory problem and model for trainer tests that must not depend on problems/."""
import contextlib

import keras
import numpy as np
import tensorflow as tf

from t2t_lite import registry
from t2t_lite.hparams import HParams

VOCAB = 6  # 0 pad, 1 EOS, symbols 2..5


class FakeReverseProblem:
  """Reverse a sequence of symbols; the Problem interface the trainer uses, nothing more."""
  name = "fake_reverse"

  def __init__(self, num_examples=64, max_len=6, seed=0):
    rng = np.random.default_rng(seed)
    self.examples = []
    for _ in range(num_examples):
      n = int(rng.integers(1, max_len + 1))
      x = rng.integers(2, VOCAB, size=n).tolist()
      self.examples.append((x + [1], x[::-1] + [1]))
    self.max_len = max_len + 1

  def get_hparams(self, model_hparams=None, data_dir=None):
    return HParams(vocab_size={"inputs": VOCAB, "targets": VOCAB},
                   modality={"inputs": "symbol", "targets": "symbol"}, has_inputs=True,
                   was_reversed=False, was_copy=False)

  def reading_errors(self, data_dir):
    del data_dir
    return contextlib.nullcontext()

  def eval_metrics(self):
    return ["accuracy", "accuracy_top5", "accuracy_per_sequence", "neg_log_perplexity",
            "approx_bleu_score"]

  def dataset(self, mode, data_dir, hparams=None, shuffle=None, seed=None,
              input_context=None):
    def pad(rows):
      return np.array([r + [0] * (self.max_len - len(r)) for r in rows], np.int32)

    ds = tf.data.Dataset.from_tensor_slices({
        "inputs": pad([e[0] for e in self.examples]),
        "targets": pad([e[1] for e in self.examples])})
    if input_context is not None:
      ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    batch = getattr(hparams, "batch_size", 8) if hparams is not None else 8
    if mode == "train":
      ds = ds.shuffle(64, seed=seed if seed is not None else 1).repeat()
    return ds.batch(batch, drop_remainder=(mode == "train"))


@keras.saving.register_keras_serializable(package="t2t_lite_tests")
class FakeSeqModel(keras.Model):
  """Embeds the inputs, mixes positions with one dense layer, predicts each target position."""

  def __init__(self, hparams, problem_hparams, **kwargs):
    super().__init__(**kwargs)
    self.hparams = hparams
    size = hparams.hidden_size
    vocab = problem_hparams.vocab_size["targets"]
    self.embed = keras.layers.Embedding(vocab, size)
    self.mix = keras.layers.Dense(size * 7, activation="relu")
    self.out = keras.layers.Dense(vocab * 7)
    self.vocab = vocab

  def call(self, features, training=False):
    x = self.embed(features["inputs"][:, :7])
    x = tf.pad(x, [[0, 0], [0, 7 - tf.shape(x)[1]], [0, 0]])
    x = tf.reshape(x, [-1, 7 * x.shape[-1]])
    logits = tf.reshape(self.out(self.mix(x)), [-1, 7, self.vocab])
    return logits[:, :tf.shape(features["targets"])[1]]


def register():
  if "fake_seq_model" not in registry.list_models():
    registry.register_model("fake_seq_model")(FakeSeqModel)


def hparams(**overrides):
  from t2t_lite import common_hparams
  hp = common_hparams.basic_params1()
  values = dict(batch_size=8, hidden_size=16, learning_rate_schedule="constant",
                learning_rate_constant=0.01, learning_rate_warmup_steps=0,
                label_smoothing=0.0, iterations_per_loop=3)
  values.update(overrides)
  for k, v in values.items():
    setattr(hp, k, v)
  return hp
