"""The transformer's explicit layer arguments, mapped from an HParams in one place.

`TransformerArgs.from_hparams` is the one mapping from tensor2tensor-style hparams to the
arguments of the embeddings, blocks and position schemes that `Transformer` and
`TransformerEncoder` build; `resolve_hparams` fills what a (possibly old) run's HParams lacks.
"""
import dataclasses

import keras

from t2t_lite import errors
from t2t_lite import layers
from t2t_lite.models import base
from t2t_lite.models import transformer_hparams


# Hparams that a run saved before they existed lacks in its hparams.json, each with the value
# that rebuilds the model such a run trained (so that its checkpoints restore): the one home of
# these legacy fallbacks. Any other hparam a partial HParams lacks takes the hparams set's
# value (`resolve_hparams`).
LEGACY_HPARAMS = {
    # Added with the post-norm and tensor2tensor options; the model before them was pre-norm,
    # scaled its embeddings by sqrt(hidden_size) and drew fan-in uniform kernels.
    "layer_preprocess_sequence": "n",
    "layer_postprocess_sequence": "da",
    "multiply_embedding_mode": "sqrt_depth",
    "initializer": "fan_in_uniform",
    "initializer_gain": 1.0,
    # The sets dropped the attention biases later (False in transformer_common); a run saved
    # before holds them in its checkpoints.
    "attention_use_bias": True,
}


def resolve_hparams(hparams, hparams_set=None):
  """The complete dict of hparams a transformer model reads.

  `hparams`' own values; for a key it lacks, LEGACY_HPARAMS's value, else that of
  `hparams_set()` (default `transformer_hparams.transformer_common`, which starts from
  `basic_params1`).
  """
  values = (hparams_set or transformer_hparams.transformer_common)().values()
  values.update(LEGACY_HPARAMS)
  values.update(base.hparams_to_dict(hparams))
  return values


@dataclasses.dataclass(frozen=True)
class TransformerArgs:
  """The explicit arguments of a transformer's layers, mapped from an HParams by `from_hparams`.

  The fields have no defaults of their own: every default lives in the hparams set
  (`transformer_hparams.transformer_common`), or in LEGACY_HPARAMS for a run saved before an
  hparam existed. `Transformer` and `TransformerEncoder` build their embeddings, blocks and
  final layer norms from one of these (`embedding_args`, `block_args`, `encoder_stack`).

  Fields (hparam in brackets):
    hidden_size, num_heads, filter_size: sizes (`hidden_size`, `num_heads`, `filter_size`).
    num_encoder_layers, num_decoder_layers: blocks per stack (`num_encoder_layers` /
      `num_decoder_layers`, or `num_hidden_layers` where 0).
    dropout: on the embeddings and each sublayer's output (`layer_prepostprocess_dropout`).
    attention_dropout, relu_dropout: on the attention probabilities and inside the
      feed-forward network (`attention_dropout`, `relu_dropout`).
    activation: the feed-forward activation (`ffn_activation`).
    layer_norm_epsilon: (`norm_epsilon`).
    norm_first: pre-norm blocks and a final layer norm per stack (`layer_preprocess_sequence`,
      `layer_postprocess_sequence`: "n"/"da"), or post-norm (""/"dan").
    position: the embeddings' absolute positions, "sinusoidal", "learned" or None (`pos`:
      "timing" and "random" sinusoidal, "emb" learned, "none" and "relative" none).
    max_length: the learned positions' table size, None for 0 (`max_length`).
    random_position_range: with `pos="random"`, training positions are a sorted random subset
      of [0, this) (`pos_random_range`); 0 otherwise.
    relative_bias: T5's bucketed relative bias in every self-attention (`pos="relative"`).
    memory_relative_bias: a bias on the attention over the inputs from the decoder position
      relative to each input position counted from the input's start and from its end
      (`memory_pos="relative"`).
    relative_num_buckets, relative_max_distance, relative_bias_scale: the buckets and scale
      of both biases (`relative_num_buckets`, `relative_max_distance`, `relative_bias_scale`).
    memory_length_scale: 0, or the attention over the inputs has its logits scaled by
      log(n) / log(this), n the inputs a query attends to (`memory_length_scale`).
    memory_position_heads: heads of the attention over the inputs that read positions alone
      (`memory_position_heads`; with `memory_pos="relative"`).
    scale_embeddings: multiply embeddings by sqrt(hidden_size) (`multiply_embedding_mode`).
    initializer, initializer_gain: the dense kernels' initializer (`kernel_initializer()`).
    attention_use_bias: biases in the attention projections (`attention_use_bias`).
  """
  hidden_size: int
  num_heads: int
  filter_size: int
  num_encoder_layers: int
  num_decoder_layers: int
  dropout: float
  attention_dropout: float
  relu_dropout: float
  activation: str
  layer_norm_epsilon: float
  norm_first: bool
  position: object
  max_length: object
  random_position_range: int
  relative_bias: bool
  memory_relative_bias: bool
  relative_num_buckets: int
  relative_max_distance: int
  relative_bias_scale: float
  memory_length_scale: float
  memory_position_heads: int
  scale_embeddings: bool
  initializer: str
  initializer_gain: float
  attention_use_bias: bool

  @classmethod
  def from_hparams(cls, hparams, hparams_set=None):
    """The one mapping from an HParams (or dict; see `resolve_hparams`) to the arguments.

    Raises:
      HParamsError (a ValueError; the scripts print it as one line and exit 2): a value the
        transformer cannot take.
    """
    try:
      return cls._from_hparams(hparams, hparams_set)
    except errors.HParamsError:
      raise
    except ValueError as e:
      raise errors.HParamsError(str(e)) from None

  @classmethod
  def _from_hparams(cls, hparams, hparams_set=None):
    hp = resolve_hparams(hparams, hparams_set)
    args = cls(
        hidden_size=int(hp["hidden_size"]),
        num_heads=int(hp["num_heads"]),
        filter_size=int(hp["filter_size"]),
        num_encoder_layers=int(hp["num_encoder_layers"] or hp["num_hidden_layers"]),
        num_decoder_layers=int(hp["num_decoder_layers"] or hp["num_hidden_layers"]),
        dropout=float(hp["layer_prepostprocess_dropout"]),
        attention_dropout=float(hp["attention_dropout"]),
        relu_dropout=float(hp["relu_dropout"]),
        activation=hp["ffn_activation"],
        layer_norm_epsilon=float(hp["norm_epsilon"]),
        norm_first=_norm_first(hp["layer_preprocess_sequence"],
                               hp["layer_postprocess_sequence"]),
        position=_position_type(hp["pos"]),
        max_length=int(hp["max_length"] or 0) or None,
        random_position_range=(int(hp["pos_random_range"]) if hp["pos"] == "random" else 0),
        relative_bias=hp["pos"] == "relative",
        memory_relative_bias=_memory_relative(hp["memory_pos"]),
        relative_num_buckets=int(hp["relative_num_buckets"]),
        relative_max_distance=int(hp["relative_max_distance"]),
        relative_bias_scale=float(hp["relative_bias_scale"]),
        memory_length_scale=float(hp["memory_length_scale"]),
        memory_position_heads=int(hp["memory_position_heads"]),
        scale_embeddings=_embedding_scale(hp["multiply_embedding_mode"]),
        initializer=hp["initializer"] or "fan_in_uniform",
        initializer_gain=float(hp["initializer_gain"]),
        attention_use_bias=bool(hp["attention_use_bias"]))
    if args.hidden_size % args.num_heads:
      raise ValueError("transformer: hidden_size=%d must be divisible by num_heads=%d." %
                       (args.hidden_size, args.num_heads))
    args.kernel_initializer()  # an unknown initializer name fails here, not at build
    if args.random_position_range < 0:
      raise ValueError("pos_random_range=%d must be positive." % args.random_position_range)
    if args.memory_position_heads and not args.memory_relative_bias:
      raise ValueError("memory_position_heads=%d reads memory_pos's bias: set "
                       "memory_pos='relative'." % args.memory_position_heads)
    if not 0 <= args.memory_position_heads <= args.num_heads:
      raise ValueError("memory_position_heads=%d must be in [0, num_heads=%d]." %
                       (args.memory_position_heads, args.num_heads))
    if args.relative_bias or args.memory_relative_bias:
      # Checks the buckets of each table built: bidirectional ones, and the decoder's causal one.
      for bidirectional in (True, False) if args.relative_bias else (True,):
        layers.RelativePositionBias(args.num_heads, args.relative_num_buckets,
                                    args.relative_max_distance, bidirectional=bidirectional)
    return args

  def kernel_initializer(self):
    """A new initializer of the dense kernels (None: the layers' default, `FanInUniform`).

    "fan_in_uniform": t2t_lite's Dense default, uniform on +-1/sqrt(fan_in).
    "uniform_unit_scaling": tensor2tensor's, VarianceScaling(initializer_gain, "fan_avg",
    "uniform"), i.e. glorot_uniform at gain 1 (fans of the fused Q/K/V kernels are those of
    the fused matrix). Any other name is a Keras initializer ("glorot_uniform", ...). A new
    one per layer: one unseeded instance would draw the same values for equal shapes.
    """
    if self.initializer == "fan_in_uniform":
      return None
    if self.initializer == "uniform_unit_scaling":
      return keras.initializers.VarianceScaling(
          scale=self.initializer_gain, mode="fan_avg", distribution="uniform")
    try:
      return keras.initializers.get(self.initializer)
    except ValueError:
      raise ValueError("initializer=%r: expected 'fan_in_uniform', 'uniform_unit_scaling' or "
                       "a Keras initializer name." % (self.initializer,)) from None

  def embedding_args(self, dtype):
    """`layers.TokenEmbedding` arguments other than the sizes and name."""
    return dict(position=self.position, max_length=self.max_length,
                scale=self.scale_embeddings, dropout=self.dropout, dtype=dtype)

  def block_args(self, dtype):
    """`layers.TransformerEncoderBlock` / `TransformerDecoderBlock` arguments but the name."""
    return dict(num_heads=self.num_heads, filter_size=self.filter_size, dropout=self.dropout,
                attention_dropout=self.attention_dropout, relu_dropout=self.relu_dropout,
                activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon,
                norm_first=self.norm_first, kernel_initializer=self.kernel_initializer(),
                attention_use_bias=self.attention_use_bias,
                memory_length_scale=self.memory_length_scale,
                memory_position_heads=self.memory_position_heads, dtype=dtype)

  def final_norm(self, dtype, name):
    """The layer norm that ends a pre-norm stack; post-norm blocks end with their own."""
    if self.norm_first:
      return keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=dtype,
                                             name=name)
    return keras.layers.Identity(dtype=dtype, name=name)

  def encoder_stack(self, model, dtype):
    """(blocks, final norm) of an encoder, the blocks tracked on `model` as encoder_block_i.

    The encoder of `Transformer` and of `TransformerEncoder`; run it with `run_encoder`.
    """
    blocks = model.track_layers("encoder_block", [
        layers.TransformerEncoderBlock(name="encoder_%d" % i, **self.block_args(dtype))
        for i in range(self.num_encoder_layers)])
    return blocks, self.final_norm(dtype, "encoder_norm")


def run_encoder(blocks, norm, x, mask, training, attention_mask=None, attention_bias=None):
  """Runs an `encoder_stack` over embedded inputs x [B, T, hidden] with the padding mask."""
  for block in blocks:
    x = block(x, mask=mask, attention_mask=attention_mask, training=training,
              attention_bias=attention_bias)
  return norm(x)


def _position_type(pos):
  """tensor2tensor's `pos` hparam -> the TokenEmbedding's position argument."""
  mapping = {"timing": "sinusoidal", "sinusoidal": "sinusoidal", "emb": "learned",
             "learned": "learned", "none": None, "": None, None: None,
             "random": "sinusoidal", "relative": None}
  if pos not in mapping:
    raise ValueError("pos=%r: expected 'timing' (sinusoidal), 'emb' (learned), 'none', "
                     "'random' (randomized sinusoidal) or 'relative' (T5's bias)." % (pos,))
  return mapping[pos]


def _memory_relative(memory_pos):
  if memory_pos not in ("none", "relative", "", None):
    raise ValueError("memory_pos=%r: expected 'none' or 'relative'." % (memory_pos,))
  return memory_pos == "relative"



def _norm_first(pre, post):
  """tensor2tensor's layer_preprocess_sequence / layer_postprocess_sequence -> pre-norm?

  ("n", "da"): layer norm before each sublayer, dropout and residual after it (pre-norm,
  tensor2tensor's default since transformer_base_v2); ("", "dan"): dropout, residual, then
  layer norm (post-norm: the paper's, transformer_base_v1's and keras-hub's).
  """
  if (pre, post) == ("n", "da"):
    return True
  if (pre, post) == ("", "dan"):
    return False
  raise ValueError("layer_preprocess_sequence=%r, layer_postprocess_sequence=%r: the "
                   "transformer supports 'n'/'da' (pre-norm) and ''/'dan' (post-norm)." %
                   (pre, post))


def _embedding_scale(mode):
  """tensor2tensor's multiply_embedding_mode: "sqrt_depth" scales embeddings by sqrt(hidden)."""
  if mode not in ("sqrt_depth", "none", "", None):
    raise ValueError("multiply_embedding_mode=%r: expected 'sqrt_depth' or 'none'." % (mode,))
  return mode == "sqrt_depth"
