"""transformer: the encoder-decoder of "Attention Is All You Need", as tensor2tensor trains it.

The shape is tensor2tensor's transformer_base_v3: pre-norm blocks (layer norm -> sublayer ->
dropout -> residual), dropout on the embeddings (`layer_prepostprocess_dropout`), on the
attention probabilities (`attention_dropout`) and inside the feed-forward network
(`relu_dropout`), a final layer norm after each stack, sinusoidal positions and embeddings
scaled by sqrt(hidden_size). tensor2tensor's hparams change these: post-norm blocks with no final
layer norm (`layer_preprocess_sequence=""`, `layer_postprocess_sequence="dan"`), learned
positions (`pos="emb"`), unscaled embeddings (`multiply_embedding_mode="none"`) and the dense
kernels' initializer (`initializer`, `initializer_gain`).

Packed rows (tensor2tensor's packed datasets: several examples concatenated in one row, with
`inputs_segmentation` / `targets_segmentation` numbering the examples 1, 2, ... and 0 at padding,
and `inputs_position` / `targets_position` each token's index within its example) are read as
the separate examples they hold: attention stays within an example, positions restart, and each
example's decoder input starts from PAD_ID.

    inputs  -> embed + positions -> dropout -> N x encoder block -> layer norm -> memory
    targets -> shift right -> embed + positions -> dropout
            -> N x decoder block (causal self-attention, attention over memory, FFN)
            -> layer norm -> logits (a Dense, or the target embedding transposed)

Problems without inputs (language models, `has_inputs=False`) get the decoder alone.

For decoding (t2t_lite.decoding) the model exposes `encode`, `init_decode_cache` and
`decode_step`; the cache is a nest of fixed-shape tensors, so a whole greedy or beam search
runs inside one `tf.while_loop` under `tf.function` (and XLA / TPU).
"""
import dataclasses

import keras
from keras import ops

from t2t_lite import layers
from t2t_lite import registry
from t2t_lite.constants import PAD_ID
from t2t_lite.layers.attention_masks import same_segment_mask
from t2t_lite.models import base
# Registers the hparams sets (transformer_base, transformer_tiny, ...) with the model; its
# transformer_common is where the defaults of the hparams read here live.
from t2t_lite.models import transformer_hparams


def shift_right(targets):
  """[B, T] -> [B, T]: PAD_ID (0, also the start id) in front, the last position dropped.

  The decoder reads position t-1 to predict position t (teacher forcing).
  """
  padded = ops.pad(targets, ((0, 0), (1, 0)), constant_values=PAD_ID)
  return padded[:, :-1]


def drop_keras_mask(x):
  """x without the Keras mask a TokenEmbedding attached (`ids != PAD_ID`).

  The decoder's first input id is PAD_ID (the start of the shifted targets), which that mask would
  hide; the decoder masks causally instead, so the mask must not reach its blocks (Keras
  passes an attached mask on to every layer whose call takes `mask`).
  """
  if getattr(x, "_keras_mask", None) is not None:
    try:
      x._keras_mask = None  # pylint: disable=protected-access
    except AttributeError:
      x = ops.add(x, ops.zeros((), x.dtype))
  return x


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
    position: "sinusoidal", "learned" or None (`pos`: "timing", "emb", "none").
    max_length: the learned positions' table size, None for 0 (`max_length`).
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
  scale_embeddings: bool
  initializer: str
  initializer_gain: float
  attention_use_bias: bool

  @classmethod
  def from_hparams(cls, hparams, hparams_set=None):
    """The one mapping from an HParams (or dict; see `resolve_hparams`) to the arguments."""
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
        scale_embeddings=_embedding_scale(hp["multiply_embedding_mode"]),
        initializer=hp["initializer"] or "fan_in_uniform",
        initializer_gain=float(hp["initializer_gain"]),
        attention_use_bias=bool(hp["attention_use_bias"]))
    if args.hidden_size % args.num_heads:
      raise ValueError("transformer: hidden_size=%d must be divisible by num_heads=%d." %
                       (args.hidden_size, args.num_heads))
    args.kernel_initializer()  # an unknown initializer name fails here, not at build
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
                attention_use_bias=self.attention_use_bias, dtype=dtype)

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


def run_encoder(blocks, norm, x, mask, training, attention_mask=None):
  """Runs an `encoder_stack` over embedded inputs x [B, T, hidden] with the padding mask."""
  for block in blocks:
    x = block(x, mask=mask, attention_mask=attention_mask, training=training)
  return norm(x)


@registry.register_model("transformer")
@keras.saving.register_keras_serializable(package="t2t_lite")
class Transformer(base.T2TModel):
  """The Transformer for sequence-to-sequence and language-model problems.

  Args:
    hparams: HParams with `hidden_size`, `num_hidden_layers` (or `num_encoder_layers` /
      `num_decoder_layers` when non-zero), `filter_size`, `num_heads`,
      `layer_prepostprocess_dropout`, `attention_dropout`, `relu_dropout`, `norm_epsilon`,
      `pos` ("timing" sinusoidal, "emb" learned up to `max_length`, or "none"),
      `shared_embedding_and_softmax_weights` (tie the target embedding and the softmax),
      `shared_embedding` (one embedding for inputs and targets; needs equal vocab sizes),
      `layer_preprocess_sequence` / `layer_postprocess_sequence` ("n" / "da": pre-norm;
      "" / "dan": post-norm), `multiply_embedding_mode` ("sqrt_depth" or "none") and
      `initializer` ("fan_in_uniform", "uniform_unit_scaling" with `initializer_gain`, or a
      Keras initializer name). `TransformerArgs.from_hparams` maps them onto the layers; a
      name the HParams lacks takes its hparams set's value (`resolve_hparams`).
    problem_hparams: HParams with `vocab_size` {"inputs": n, "targets": n} and `has_inputs`.
    **kwargs: `keras.Model` arguments (name, ...).

  Call arguments:
    features: {"inputs": int [B, T_in], "targets": int [B, T]} padded with 0, or
      {"targets"} alone when the problem has no inputs. The decoder reads the targets
      shifted right by one (teacher forcing). Packed rows add "targets_segmentation",
      "targets_position" (and "inputs_segmentation", "inputs_position").
    training: whether dropout is active.

  Returns:
    float32 logits [B, T, vocab_size["targets"]].

  Example:

  >>> hp = registry.hparams("transformer_tiny")
  >>> php = HParams(vocab_size={"inputs": 4, "targets": 4},
  ...               modality={"inputs": "symbol", "targets": "symbol"}, has_inputs=True)
  >>> model = registry.model("transformer")(hp, php)
  >>> logits = model({"inputs": x, "targets": y}, training=True)     # [B, T, 4]
  >>> enc, enc_mask = model.encode(x)
  >>> cache = model.init_decode_cache(batch_size, max_length, enc, enc_mask)
  >>> logits_0, cache = model.decode_step(tf.zeros([batch_size], tf.int32), cache, 0)
  """

  reads_packed_features = True

  def __init__(self, hparams, problem_hparams, **kwargs):
    super().__init__(hparams, problem_hparams, **kwargs)
    hp = resolve_hparams(self._plain.hparams)
    args = TransformerArgs.from_hparams(hp)
    dtype = self.layer_dtype
    self.hidden_size = args.hidden_size
    self.num_heads = args.num_heads
    self.target_vocab_size = self.vocab_size("targets")
    if args.position == "learned" and not args.max_length:
      raise ValueError("transformer: pos='emb' (learned positions) needs max_length > 0.")
    self.norm_first = args.norm_first
    embedding_args = args.embedding_args(dtype)

    self.target_embedding = layers.TokenEmbedding(
        self.target_vocab_size, self.hidden_size, name="target_embedding", **embedding_args)
    if self.has_inputs:
      if hp["shared_embedding"]:
        if self.vocab_size("inputs") != self.target_vocab_size:
          raise ValueError("transformer: shared_embedding=True needs equal input and target "
                           "vocab sizes (got %d and %d)." %
                           (self.vocab_size("inputs"), self.target_vocab_size))
        self.input_embedding = None
      else:
        self.input_embedding = layers.TokenEmbedding(
            self.vocab_size("inputs"), self.hidden_size, name="input_embedding",
            **embedding_args)
      self.encoder_blocks, self.encoder_norm = args.encoder_stack(self, dtype)
    else:
      self.input_embedding = None
      self.encoder_blocks = []
      self.encoder_norm = None
    self.decoder_blocks = self.track_layers("decoder_block", [
        layers.TransformerDecoderBlock(name="decoder_%d" % i, **args.block_args(dtype))
        for i in range(args.num_decoder_layers)])
    self.decoder_norm = args.final_norm(dtype, "decoder_norm")
    if hp["shared_embedding_and_softmax_weights"]:
      self.output_projection = None
    else:
      self.output_projection = layers.Dense(self.target_vocab_size,
                                            kernel_initializer=args.kernel_initializer(),
                                            dtype=dtype, name="output_projection")

  # --- the pieces ----------------------------------------------------------------------------

  def _embed_inputs(self, inputs, training, position=None):
    embedding = self.input_embedding or self.target_embedding
    return embedding(inputs, positions=position, training=training)

  def encode(self, inputs, training=False, segmentation=None, position=None):
    """Runs the encoder.

    Args:
      inputs: int [B, T_in], padded with 0.
      training: whether dropout is active.
      segmentation: optional int [B, T_in], the example of each position in a packed row
        (1, 2, ...; 0 at padding): positions attend within their example only.
      position: optional int [B, T_in], each position's index within its example.

    Returns:
      (encoder_output [B, T_in, hidden] in the compute dtype, encoder_padding_mask: bool
      [B, T_in], True at real tokens and False at padding).
    """
    if not self.has_inputs:
      raise ValueError("transformer: this problem has no inputs (has_inputs=False); there "
                       "is no encoder to run.")
    inputs = ops.cast(inputs, "int32")
    mask = ops.not_equal(inputs, PAD_ID)
    x = self._embed_inputs(inputs, training, position)
    x = run_encoder(self.encoder_blocks, self.encoder_norm, x, mask, training,
                    attention_mask=_same_segment(segmentation, segmentation))
    return x, mask

  def _logits(self, x):
    if self.output_projection is None:
      logits = self.target_embedding.logits(x)
    else:
      logits = self.output_projection(x)
    return self._float32(logits)

  def decode(self, decoder_input, encoder_output=None, encoder_mask=None, training=False,
             segmentation=None, position=None, encoder_segmentation=None):
    """Teacher-forced decoder over a whole (already shifted) sequence: float32 logits.

    `segmentation` and `position` describe packed target rows as in `encode`;
    `encoder_segmentation` is the inputs' (each target example attends to its own inputs).
    """
    x = drop_keras_mask(self.target_embedding(decoder_input, positions=position,
                                              training=training))
    self_mask = _same_segment(segmentation, segmentation)
    memory_attention_mask = _same_segment(segmentation, encoder_segmentation)
    for block in self.decoder_blocks:
      x = block(x, memory=encoder_output, memory_mask=encoder_mask, training=training,
                attention_mask=self_mask, memory_attention_mask=memory_attention_mask)
    return self._logits(self.decoder_norm(x))

  def call(self, features, training=None):
    """Logits of the targets; packed rows (tensor2tensor's `*_segmentation` and `*_position`
    features, see `encode`) keep their examples apart."""
    targets = ops.cast(features["targets"], "int32")
    decoder_input = shift_right(targets)
    segmentation = position = None
    if "targets_segmentation" in features:
      segmentation = ops.cast(features["targets_segmentation"], "int32")
      position = ops.cast(features["targets_position"], "int32")
      # Each example of a packed row starts from PAD_ID, as an unpacked one does (not from
      # the previous example's EOS).
      decoder_input = ops.where(ops.equal(position, 0), PAD_ID, decoder_input)
    encoder_output = encoder_mask = encoder_segmentation = None
    if self.has_inputs:
      encoder_segmentation = features.get("inputs_segmentation")
      if encoder_segmentation is not None:
        encoder_segmentation = ops.cast(encoder_segmentation, "int32")
      encoder_position = features.get("inputs_position")
      encoder_output, encoder_mask = self.encode(
          features["inputs"], training=training, segmentation=encoder_segmentation,
          position=None if encoder_position is None else ops.cast(encoder_position, "int32"))
    return self.decode(decoder_input, encoder_output, encoder_mask, training=training,
                       segmentation=segmentation, position=position,
                       encoder_segmentation=encoder_segmentation)

  # --- incremental decoding ------------------------------------------------------------------

  def init_decode_cache(self, batch_size, max_length, encoder_output=None, encoder_mask=None):
    """The state `decode_step` reads and returns, for decoding up to `max_length` positions.

    The cache is a dict of fixed-shape tensors (batch first everywhere, so a beam search can
    tile and gather it along axis 0):

        {"self_attention": [per decoder layer: the block's self-attention key/value cache,
                            e.g. {"key": [B, heads, max_length, key_dim],
                                  "value": [B, heads, max_length, value_dim]}],
         "memory_kv":      [per decoder layer: the keys/values of the attention over the
                            encoder output, computed here ONCE], # only with inputs
         "memory_mask":    bool [B, T_in]}                        # only with inputs

    Args:
      batch_size: int or scalar int tensor.
      max_length: int, the most positions that will be decoded.
      encoder_output: [B, T_in, hidden] from `encode` (required when the problem has inputs).
      encoder_mask: bool [B, T_in] from `encode`; default all True.
    """
    if self.has_inputs and encoder_output is None:
      raise ValueError("transformer: init_decode_cache needs the encoder_output (from "
                       "model.encode(inputs)) for a problem with inputs.")
    if not self.built:
      raise ValueError("transformer: build the model (call it on a batch, or load it) before "
                       "decoding.")
    dtype = self.decoder_blocks[0].compute_dtype if self.decoder_blocks else self.compute_dtype
    cache = {"self_attention": [block.init_cache(batch_size, max_length, dtype)
                                for block in self.decoder_blocks]}
    if self.has_inputs:
      if encoder_mask is None:
        encoder_mask = ops.ones(ops.shape(encoder_output)[:2], "bool")
      cache["memory_kv"] = [block.compute_memory_kv(encoder_output)
                            for block in self.decoder_blocks]
      cache["memory_mask"] = ops.cast(encoder_mask, "bool")
    return cache

  def decode_step(self, ids, cache, index):
    """One decoder position: the logits of the next token and the updated cache.

    Args:
      ids: int [B] (or [B, 1]), the decoder input at position `index`: PAD_ID (0) at index 0,
        then the token chosen at index - 1.
      cache: from `init_decode_cache` or the previous `decode_step`.
      index: int or scalar int tensor, the position being decoded (0-based).

    Returns:
      (logits float32 [B, vocab_size], new_cache with the same structure and shapes).
    """
    ids = ops.reshape(ops.cast(ids, "int32"), (-1, 1))
    index = ops.cast(index, "int32")
    x = drop_keras_mask(self.target_embedding(ids, start_index=index, training=False))
    new_self_attention = []
    memory_kv = cache.get("memory_kv")
    memory_mask = cache.get("memory_mask")
    for i, block in enumerate(self.decoder_blocks):
      x, layer_cache = block(
          x, memory_mask=memory_mask, training=False, cache=cache["self_attention"][i],
          cache_index=index, memory_kv=None if memory_kv is None else memory_kv[i])
      new_self_attention.append(layer_cache)
    logits = self._logits(self.decoder_norm(x))
    new_cache = dict(cache)
    new_cache["self_attention"] = new_self_attention
    return logits[:, 0, :], new_cache


def _position_type(pos):
  """tensor2tensor's `pos` hparam -> the TokenEmbedding's position argument."""
  mapping = {"timing": "sinusoidal", "sinusoidal": "sinusoidal", "emb": "learned",
             "learned": "learned", "none": None, "": None, None: None}
  if pos not in mapping:
    raise ValueError("pos=%r: expected 'timing' (sinusoidal), 'emb' (learned) or 'none'." %
                     (pos,))
  return mapping[pos]


def _same_segment(query_segmentation, key_segmentation):
  """[B, T, S] True where both positions belong to the same packed example; None when either
  side is not packed."""
  if query_segmentation is None or key_segmentation is None:
    return None
  return same_segment_mask(query_segmentation, key_segmentation)


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
