"""transformer_encoder: a Transformer encoder with a classifier head, for class-label problems.

    text ids [B, T]      -> token embedding + positions ---------\\
    images [B, H, W, C]  -> rows (or patches) -> Dense + positions -> dropout
        -> N x encoder block -> layer norm -> mean over real positions -> Dense -> classes

Text problems (sentiment_imdb) give padded int ids; image problems (image_mnist) give float
images that are read as a sequence of rows (28 rows of 28 pixels for MNIST) or, with
`image_patch_size` > 0, of non-overlapping square patches. Real-valued sequences [B, T, D]
are projected like rows.
"""
import keras
from keras import ops

from t2t_lite import layers
from t2t_lite import registry
from t2t_lite.constants import PAD_ID
from t2t_lite.layers.dropout import Dropout
from t2t_lite.layers.embedding import get_timing_signal_1d
from t2t_lite.models import base
from t2t_lite.models.transformer import TransformerArgs
from t2t_lite.models.transformer import resolve_hparams
from t2t_lite.models.transformer import run_encoder
from t2t_lite.models.transformer_hparams import transformer_common


def image_to_sequence(images, patch_size=0):
  """[B, H, W, C] -> [B, H, W*C] (rows), or [B, (H/p)*(W/p), p*p*C] with patch_size p > 0."""
  shape = images.shape
  if len(shape) != 4 or None in shape[1:]:
    raise ValueError("image inputs must be [batch, height, width, channels] with known sizes; "
                     "received shape %s." % (tuple(shape),))
  _, height, width, channels = shape
  if not patch_size:
    return ops.reshape(images, (-1, height, width * channels))
  p = int(patch_size)
  if height % p or width % p:
    raise ValueError("image_patch_size=%d must divide the image size %dx%d." % (p, height, width))
  x = ops.reshape(images, (-1, height // p, p, width // p, p, channels))
  x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
  return ops.reshape(x, (-1, (height // p) * (width // p), p * p * channels))


@registry.register_model("transformer_encoder")
@keras.saving.register_keras_serializable(package="t2t_lite")
class TransformerEncoder(base.T2TModel):
  """A Transformer encoder, mean pooling and a linear classifier.

  Args:
    hparams: HParams with the transformer's sizes and dropouts (`hidden_size`,
      `num_hidden_layers`, `filter_size`, `num_heads`, `layer_prepostprocess_dropout`,
      `attention_dropout`, `relu_dropout`, `norm_epsilon`, `pos`, ...: the transformer's,
      mapped by `TransformerArgs.from_hparams`), `dropout` (before the classifier) and
      `image_patch_size` (0: read an image row by row). A name the HParams lacks takes
      transformer_encoder_common's value (`resolve_hparams`).
    problem_hparams: HParams with `vocab_size` {"inputs": n (text), "targets": num_classes}
      and `modality` {"inputs": "symbol" | "image" | "real", "targets": "class_label"}.
    **kwargs: `keras.Model` arguments.

  Call arguments:
    features: {"inputs": int [B, T] padded with 0, or float images [B, H, W, C], or float
      [B, T, D]}; "targets" is not read.
    training: whether dropout is active.

  Returns:
    float32 logits [B, num_classes].

  Example:

  >>> hp = registry.hparams("transformer_encoder_tiny")
  >>> php = HParams(vocab_size={"inputs": 256, "targets": 10},
  ...               modality={"inputs": "image", "targets": "class_label"}, has_inputs=True)
  >>> model = registry.model("transformer_encoder")(hp, php)
  >>> logits = model({"inputs": images}, training=False)       # [B, 10]
  """

  def __init__(self, hparams, problem_hparams, **kwargs):
    super().__init__(hparams, problem_hparams, **kwargs)
    hp = resolve_hparams(self._plain.hparams, transformer_encoder_common)
    args = TransformerArgs.from_hparams(hp)
    dtype = self.layer_dtype
    self.hidden_size = args.hidden_size
    self.image_patch_size = int(hp["image_patch_size"] or 0)
    self.input_modality = self.modality("inputs")
    if self.input_modality not in ("symbol", "image", "real"):
      raise ValueError("transformer_encoder: unknown inputs modality %r; expected 'symbol', "
                       "'image' or 'real'." % (self.input_modality,))
    self.position = args.position
    if self.input_modality == "symbol":
      self.input_embedding = layers.TokenEmbedding(
          self.vocab_size("inputs"), self.hidden_size, name="input_embedding",
          **args.embedding_args(dtype))
      self.input_projection = None
    else:
      self.input_embedding = None
      self.input_projection = layers.Dense(self.hidden_size,
                                           kernel_initializer=args.kernel_initializer(),
                                           dtype=dtype, name="input_projection")
      if self.position == "learned":
        if not args.max_length:
          raise ValueError("transformer_encoder: pos='emb' needs max_length > 0.")
        self.position_embedding = keras.layers.Embedding(
            args.max_length, self.hidden_size, dtype=dtype, name="position_embedding")
      else:
        self.position_embedding = None
      self.input_dropout = Dropout(args.dropout, dtype=dtype, name="input_dropout")
    self.encoder_blocks, self.encoder_norm = args.encoder_stack(self, dtype)
    self.head_dropout = Dropout(float(hp["dropout"]), dtype=dtype, name="head_dropout")
    self.classifier = layers.Dense(self.vocab_size("targets"),
                                   kernel_initializer=args.kernel_initializer(), dtype=dtype,
                                   name="classifier")

  def _embed(self, inputs, training):
    """Returns (x [B, T, hidden], mask bool [B, T] or None)."""
    if self.input_modality == "symbol":
      inputs = ops.cast(inputs, "int32")
      return self.input_embedding(inputs, training=training), ops.not_equal(inputs, PAD_ID)
    if not keras.backend.is_float_dtype(inputs.dtype):
      inputs = ops.cast(inputs, "float32")
    if self.input_modality == "image":
      inputs = image_to_sequence(inputs, self.image_patch_size)
    x = self.input_projection(inputs)
    length = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
    if self.position == "sinusoidal":
      signal = get_timing_signal_1d(ops.arange(length), self.hidden_size, dtype=x.dtype)
      x = x + ops.expand_dims(signal, 0)
    elif self.position == "learned":
      x = x + ops.expand_dims(self.position_embedding(ops.arange(length)), 0)
    return self.input_dropout(x, training=training), None

  def encode(self, inputs, training=False):
    """(encoder_output [B, T, hidden], mask bool [B, T] or None for dense inputs)."""
    x, mask = self._embed(inputs, training)
    return run_encoder(self.encoder_blocks, self.encoder_norm, x, mask, training), mask

  def required_features(self):
    return ("inputs",)

  def call(self, features, training=None):
    x, mask = self.encode(features["inputs"], training=training)
    if mask is None:
      pooled = ops.mean(x, axis=1)
    else:
      weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
      count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1.0, x.dtype))
      pooled = ops.sum(x * weights, axis=1) / count
    pooled = self.head_dropout(pooled, training=training)
    return self._float32(self.classifier(pooled))


def transformer_encoder_common():
  hparams = transformer_common()
  hparams.add_hparam("image_patch_size", 0)  # 0: one image row per position
  return hparams


@registry.register_hparams
def transformer_encoder_tiny():
  """A 2-layer, 128-wide encoder classifier (transformer_tiny's sizes).

  Train it (MNIST read as 28 rows of 28 pixels):

      t2t-trainer --problem=image_mnist --model=transformer_encoder \\
          --hparams_set=transformer_encoder_tiny --train_steps=2000 \\
          --data_dir=~/t2t_data --output_dir=~/t2t_train/mnist_encoder_tiny

  Result on this machine: not measured; its TFDS data (mnist / imdb_reviews) cannot be
  downloaded here (the problems' tests run on tfds.testing.mock_data).
  """
  hparams = transformer_encoder_common()
  hparams.hidden_size = 128
  hparams.num_hidden_layers = 2
  hparams.filter_size = 512
  hparams.num_heads = 4
  hparams.dropout = 0.1
  hparams.label_smoothing = 0.1
  # tensor2tensor has no encoder-only classifier set; these follow transformer_tiny's
  # optimizer (Adam, noam) with a warmup sized for short CPU runs.
  # batch_size counts examples for fixed-size inputs (images) and tokens for text, as the
  # problem decides (tensor2tensor's batch_size_means_tokens): 128 MNIST images per batch.
  hparams.batch_size = 128
  hparams.max_length = 0  # keep every example (0: up to batch_size tokens)
  hparams.optimizer_adam_beta2 = 0.997
  hparams.optimizer_adam_epsilon = 1e-9
  hparams.learning_rate_schedule = "noam"
  hparams.learning_rate_constant = 1.0
  hparams.learning_rate_warmup_steps = 400
  return hparams


@registry.register_hparams
def transformer_encoder_small():
  """A 2-layer, 256-wide encoder classifier (transformer_small's sizes).

  Train it (IMDB sentiment):

      t2t-trainer --problem=sentiment_imdb --model=transformer_encoder \\
          --hparams_set=transformer_encoder_small --train_steps=4000 \\
          --data_dir=~/t2t_data --output_dir=~/t2t_train/imdb_encoder_small

  Result on this machine: not measured; its TFDS data (mnist / imdb_reviews) cannot be
  downloaded here (the problems' tests run on tfds.testing.mock_data).
  """
  hparams = transformer_encoder_tiny()
  hparams.hidden_size = 256
  hparams.filter_size = 1024
  hparams.num_heads = 4
  hparams.batch_size = 4096  # tokens per batch for text problems such as sentiment_imdb
  hparams.learning_rate_warmup_steps = 1000
  return hparams
