"""The keras-hub encoder-decoder the benchmarks compare t2t_lite against: model, loss, decode.

What a Keras user writes with keras-hub's layers: `TokenAndPositionEmbedding`, N x
`TransformerEncoder` and N x `TransformerDecoder` (pre-norm with a final LayerNormalization
after each stack when `normalize_first`, keras-hub's post-norm otherwise), a Dense softmax,
trained with `model.fit`. Decoding runs keras-hub's own samplers (`GreedySampler`,
`BeamSampler`) over the decoder's key/value caches, tuned as a user who wants speed tunes them:

- the encoder output, its padding mask and the cross-attention keys/values are computed once
  and captured by the step function, tiled to the beams, instead of riding in the sampler's
  cache (which the beam sampler gathers along the beams at every step): only the
  self-attention caches are reordered;
- a sequence that has emitted its end token is kept as it is: its next token is forced to
  padding with probability 1, so a finished beam neither grows nor changes its score (keras-hub
  extends it with whatever the model predicts after the end otherwise);
- the sampler stops when every row (every beam) has ended, and its length bound is the
  caller's (the prompt's width).

keras-hub is not a dependency of t2t_lite (setup.py's `bench` extra installs it).
"""


def build_model(vocab_size, sequence_length, layers=2, hidden_size=256, filter_size=1024,
                num_heads=4, dropout=0.1, normalize_first=True, start_id=None):
  """(keras.Model {"inputs", "decoder_inputs"} -> logits, dict of its layers).

  Args:
    vocab_size: ids of the shared vocabulary (the logits' width).
    sequence_length: the longest sequence the position embeddings cover.
    start_id: the decoder's start id when it lies outside the vocabulary (an extra embedding
      row, so keras-hub's `mask_zero` padding mask never hides it); None when the
      vocabulary has its own start token.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import keras_hub  # pylint: disable=g-import-not-at-top
  target_vocab = vocab_size if start_id is None or start_id < vocab_size else start_id + 1
  parts = {
      "source_embedding": keras_hub.layers.TokenAndPositionEmbedding(
          vocab_size, sequence_length, hidden_size, mask_zero=True, name="source_embedding"),
      "target_embedding": keras_hub.layers.TokenAndPositionEmbedding(
          target_vocab, sequence_length, hidden_size, mask_zero=True,
          name="target_embedding"),
      "encoders": [keras_hub.layers.TransformerEncoder(
          filter_size, num_heads, dropout=dropout, normalize_first=normalize_first,
          name="encoder_%d" % i) for i in range(layers)],
      "decoders": [keras_hub.layers.TransformerDecoder(
          filter_size, num_heads, dropout=dropout, normalize_first=normalize_first,
          name="decoder_%d" % i) for i in range(layers)],
      # float32 logits under a mixed policy, as Keras's mixed-precision guide says.
      "logits": keras.layers.Dense(vocab_size, dtype="float32", name="logits"),
      "normalize_first": normalize_first,
      "num_heads": num_heads,
      "key_dim": hidden_size // num_heads,
  }
  if normalize_first:
    parts["encoder_norm"] = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
    parts["decoder_norm"] = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")
  inputs = keras.Input((None,), dtype="int32", name="inputs")
  decoder_inputs = keras.Input((None,), dtype="int32", name="decoder_inputs")
  memory = encode(parts, inputs)
  y = parts["target_embedding"](decoder_inputs)
  for decoder in parts["decoders"]:
    y = decoder(y, memory)
  if normalize_first:
    y = parts["decoder_norm"](y)
  model = keras.Model({"inputs": inputs, "decoder_inputs": decoder_inputs},
                      parts["logits"](y))
  return model, parts


def encode(parts, source, padding_mask=None):
  x = parts["source_embedding"](source)
  for encoder in parts["encoders"]:
    x = encoder(x, padding_mask=padding_mask)
  if parts["normalize_first"]:
    x = parts["encoder_norm"](x)
  return x


def masked_loss(vocab_size, label_smoothing=0.0):
  """Cross-entropy over the non-padding targets (id 0 is padding), with label smoothing."""
  from keras import ops  # pylint: disable=g-import-not-at-top

  def loss(targets, logits):
    weights = ops.cast(ops.not_equal(targets, 0), "float32")
    if label_smoothing:
      one_hot = ops.one_hot(targets, vocab_size)
      one_hot = one_hot * (1.0 - label_smoothing) + label_smoothing / vocab_size
      ce = ops.categorical_crossentropy(one_hot, logits, from_logits=True)
    else:
      ce = ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1.0)

  return loss


def make_decode_fn(parts, start_id, end_id, beam_size=1, jit_compile=True, pad_id=0):
  """A tf.function: source ids [B, S] (0-padded), an int32 zero tensor [B, L] giving the
  output bound -> ids [B, L] (start id first, then the decode; after the end id, padding).
  `end_id` None: no end token, every row decodes L - 1 tokens (a fixed amount of work).
  """
  import keras_hub  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras import ops  # pylint: disable=g-import-not-at-top
  decoders = parts["decoders"]
  heads, key_dim = parts["num_heads"], parts["key_dim"]
  sampler = (keras_hub.samplers.BeamSampler(num_beams=beam_size) if beam_size > 1
             else keras_hub.samplers.GreedySampler())

  def step(token_ids, index, self_caches, memory, memory_mask, cross_caches,
           self_index, cross_index):
    x = parts["target_embedding"](token_ids, start_index=index)
    new_self, new_cross = [], []
    for decoder, self_cache, cross_cache in zip(decoders, self_caches, cross_caches):
      x, self_cache, cross_cache = decoder(
          x, encoder_sequence=memory, encoder_padding_mask=memory_mask,
          self_attention_cache=self_cache, self_attention_cache_update_index=self_index,
          cross_attention_cache=cross_cache, cross_attention_cache_update_index=cross_index)
      new_self.append(self_cache)
      new_cross.append(cross_cache)
    if parts["normalize_first"]:
      x = parts["decoder_norm"](x)
    return parts["logits"](x)[:, 0], tuple(new_self), tuple(new_cross)

  def decode(source, bound):
    batch, length = tf.shape(source)[0], tf.shape(bound)[1]
    memory_mask = ops.not_equal(source, pad_id)
    memory = encode(parts, source, memory_mask)
    zeros_self = tf.zeros([batch, 2, length, heads, key_dim], memory.dtype)
    zeros_cross = tf.zeros([batch, 2, tf.shape(source)[1], heads, key_dim], memory.dtype)
    prompt = tf.concat([tf.fill([batch, 1], start_id), tf.zeros_like(bound[:, 1:])], 1)
    # The start token fills position 0 of the self caches and the cross caches, once.
    _, self_caches, cross_caches = step(
        prompt[:, :1], 0, (zeros_self,) * len(decoders), memory, memory_mask,
        (zeros_cross,) * len(decoders), 0, 0)
    # Per-row constants, tiled as the sampler tiles its state (row b's beams are rows
    # b*K .. b*K+K-1) and kept out of the state it reorders.
    tile = (lambda t: ops.repeat(t, beam_size, axis=0)) if beam_size > 1 else (lambda t: t)
    memory, memory_mask = tile(memory), tile(memory_mask)
    cross_caches = tuple(tile(c) for c in cross_caches)
    vocab = parts["logits"].units
    forced_pad = tf.one_hot(pad_id, vocab, on_value=0.0, off_value=-1e9)

    def next_fn(prompt, cache, index):
      token = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])  # [B, 1]
      logits, cache, _ = step(token, index - 1, cache, memory, memory_mask, cross_caches,
                              index - 1, None)
      if end_id is not None:
        ended = tf.logical_or(tf.equal(token, end_id), tf.equal(token, pad_id))  # [B, 1]
        logits = tf.where(ended, forced_pad[None, :], logits)
      return logits, None, cache

    return sampler(next_fn, prompt, cache=self_caches, index=1,
                   stop_token_ids=None if end_id is None else [end_id])

  return tf.function(decode, jit_compile=jit_compile, reduce_retracing=False)
