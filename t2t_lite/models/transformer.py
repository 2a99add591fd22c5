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
runs inside one `tf.while_loop` under `tf.function` (and XLA / TPU). Outside XLA the
self-attention cache may instead grow by a position per step (`init_decode_cache(batch,
None)`, `decode_step(..., cache_grows=True)`), so that a step costs what the positions decoded
so far cost.
"""
import keras
from keras import ops

from t2t_lite import layers
from t2t_lite import registry
from t2t_lite.constants import PAD_ID
from t2t_lite.layers.attention_masks import same_segment_mask
from t2t_lite.models import base
# Registers the hparams sets (transformer_base, transformer_tiny, ...) with the model; its
# transformer_common is where the defaults of the hparams read here live.
from t2t_lite.models import transformer_hparams  # noqa: F401
from t2t_lite.models import transformer_length_hparams  # noqa: F401
# The arguments' one home; importable from here as before.
from t2t_lite.models.transformer_args import LEGACY_HPARAMS  # noqa: F401
from t2t_lite.models.transformer_args import TransformerArgs
from t2t_lite.models.transformer_args import resolve_hparams
from t2t_lite.models.transformer_args import run_encoder
from t2t_lite.models.transformer_positions import PositionScheme


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
  # init_decode_cache(batch, None) and decode_step(..., cache_grows=True) work (see decode_ids).
  supports_growing_cache = True
  # decode_step reads these cache entries with one row per input whatever the number of beams
  # (its cross-attention maps each input's beams onto its encoder row: search.beam_search).
  beam_shared_cache_keys = ("memory_kv", "memory_mask")

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
    # None with the default positions, so that a model without them holds nothing new.
    self.positions = None
    if PositionScheme.needed(args):
      self.positions = PositionScheme(
          self.num_heads, args.random_position_range, args.relative_bias,
          args.memory_relative_bias, args.relative_num_buckets, args.relative_max_distance,
          args.relative_bias_scale, has_inputs=self.has_inputs, seed=hp.get("random_seed"), name="position_scheme")

  # --- the pieces ----------------------------------------------------------------------------

  def _embedding_positions(self, ids, position, segmentation, training):
    if self.positions is None:
      return position
    return self.positions.embedding_positions(ids, position, segmentation, training)

  def _embed_inputs(self, inputs, training, position=None, segmentation=None):
    embedding = self.input_embedding or self.target_embedding
    positions = self._embedding_positions(inputs, position, segmentation, training)
    return embedding(inputs, positions=positions, training=training)

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
    x = self._embed_inputs(inputs, training, position, segmentation)
    bias = None if self.positions is None else self.positions.encoder_bias_of(inputs, position)
    x = run_encoder(self.encoder_blocks, self.encoder_norm, x, mask, training,
                    attention_mask=_same_segment(segmentation, segmentation),
                    attention_bias=bias)
    return x, mask

  @property
  def output_embedding(self):
    """The TokenEmbedding whose transposed table computes the logits (shared input/output
    weights), else None (`layers.embedding.transposed_output_weights` reads it)."""
    return self.target_embedding if self.output_projection is None else None

  def _logits(self, x):
    if self.output_projection is None:
      logits = self.target_embedding.logits(x)
    else:
      logits = self.output_projection(x)
    return self._float32(logits)

  def decode(self, decoder_input, encoder_output=None, encoder_mask=None, training=False,
             segmentation=None, position=None, encoder_segmentation=None,
             encoder_position=None, target_mask=None):
    """Teacher-forced decoder over a whole (already shifted) sequence: float32 logits.

    `segmentation` and `position` describe packed target rows as in `encode`;
    `encoder_segmentation` and `encoder_position` are the inputs' (each target example attends
    to its own inputs). `target_mask` (bool [B, T], True at real targets) bounds randomized
    positions in training.
    """
    self_bias = memory_bias = None
    embed_positions = position
    if self.positions is not None:
      # The decoder input starts with PAD_ID: its real positions are the targets'.
      real = decoder_input if target_mask is None else ops.cast(target_mask, "int32")
      embed_positions = self.positions.embedding_positions(real, position, segmentation,
                                                           training)
      self_bias = self.positions.decoder_bias_of(decoder_input, position)
      query = position if position is not None else ops.expand_dims(
          ops.arange(ops.shape(decoder_input)[1], dtype="int32"), 0)
      memory_bias = self.positions.memory_bias_of(query, encoder_mask, encoder_position,
                                                  encoder_segmentation)
    x = drop_keras_mask(self.target_embedding(decoder_input, positions=embed_positions,
                                              training=training))
    self_mask = _same_segment(segmentation, segmentation)
    memory_attention_mask = _same_segment(segmentation, encoder_segmentation)
    for block in self.decoder_blocks:
      x = block(x, memory=encoder_output, memory_mask=encoder_mask, training=training,
                attention_mask=self_mask, memory_attention_mask=memory_attention_mask,
                attention_bias=self_bias, memory_attention_bias=memory_bias)
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
    encoder_output = encoder_mask = encoder_segmentation = encoder_position = None
    if self.has_inputs:
      encoder_segmentation = features.get("inputs_segmentation")
      if encoder_segmentation is not None:
        encoder_segmentation = ops.cast(encoder_segmentation, "int32")
      encoder_position = features.get("inputs_position")
      if encoder_position is not None:
        encoder_position = ops.cast(encoder_position, "int32")
      encoder_output, encoder_mask = self.encode(
          features["inputs"], training=training, segmentation=encoder_segmentation,
          position=encoder_position)
    return self.decode(decoder_input, encoder_output, encoder_mask, training=training,
                       segmentation=segmentation, position=position,
                       encoder_segmentation=encoder_segmentation,
                       encoder_position=encoder_position,
                       target_mask=ops.not_equal(targets, PAD_ID))

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
      max_length: int, the most positions that will be decoded; None: self-attention caches
        of 0 positions that grow by one at each `decode_step(..., cache_grows=True)` (not
        under XLA).
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

  def decode_step(self, ids, cache, index, cache_grows=False):
    """One decoder position: the logits of the next token and the updated cache.

    Args:
      ids: int [B] (or [B, 1]), the decoder input at position `index`: PAD_ID (0) at index 0,
        then the token chosen at index - 1.
      cache: from `init_decode_cache` or the previous `decode_step`.
      index: int or scalar int tensor, the position being decoded (0-based).
      cache_grows: the cache is a growing one (`init_decode_cache(batch, None)`) holding the
        `index` positions before this one; the step appends its own.

    Returns:
      (logits float32 [B, vocab_size], new_cache with the same structure, and the same shapes
      unless the cache grows).
    """
    ids = ops.reshape(ops.cast(ids, "int32"), (-1, 1))
    index = ops.cast(index, "int32")
    x = drop_keras_mask(self.target_embedding(ids, start_index=index, training=False))
    new_self_attention = []
    memory_kv = cache.get("memory_kv")
    memory_mask = cache.get("memory_mask")
    self_bias = memory_bias = None
    if self.positions is not None and self.decoder_blocks:
      if cache_grows:
        cache_length = index + 1
      else:
        cache_length = ops.shape(next(iter(cache["self_attention"][0].values())))[2]
      self_bias, memory_bias = self.positions.step_biases(index, cache_length, memory_mask)
    for i, block in enumerate(self.decoder_blocks):
      x, layer_cache = block(
          x, memory_mask=memory_mask, training=False, cache=cache["self_attention"][i],
          cache_index=None if cache_grows else index,
          memory_kv=None if memory_kv is None else memory_kv[i],
          attention_bias=self_bias, memory_attention_bias=memory_bias)
      new_self_attention.append(layer_cache)
    logits = self._logits(self.decoder_norm(x))
    new_cache = dict(cache)
    new_cache["self_attention"] = new_self_attention
    return logits[:, 0, :], new_cache


def _same_segment(query_segmentation, key_segmentation):
  """[B, T, S] True where both positions belong to the same packed example; None when either
  side is not packed."""
  if query_segmentation is None or key_segmentation is None:
    return None
  return same_segment_mask(query_segmentation, key_segmentation)
