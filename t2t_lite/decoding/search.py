"""Greedy and beam search over a step function with a fixed-shape cache.

Both searches drive a `step_fn(ids, cache, index) -> (logits, new_cache)`, such as the
Transformer's `decode_step`: `ids` int32 [N] are the decoder inputs at position `index` (0 at
index 0, then the token chosen at index - 1), `logits` float32 [N, vocab_size], and `cache` a
nest of tensors whose first axis is N and whose shapes never change. Each search is one
`tf.while_loop` with static shapes, so it runs inside `tf.function`, under XLA
(`jit_compile=True`) and on TPUs.

Conventions shared by both searches:

- Positions: the output holds `decode_length` positions; position i is the token predicted
  at step i. A row is finished once it has produced `eos_id` (kept in the output); the
  positions after it hold 0 (padding). `max_lengths` (int [B]) gives each row its own limit
  (<= decode_length): a row that reaches it without EOS is cut off there. Per-row limits make
  a batch decode exactly like its rows decoded one at a time, whatever the batch's padding.
- Prefixes (prompts of decoder-only models): `prefix` int [B, P] with `prefix_length` [B]
  forces the first prefix_length[b] output tokens of row b. Forced tokens add nothing to the
  score and never end a row; the prefix stays at the front of the output.
- The loop stops as soon as every row is finished, so `decode_length` only bounds the work.
- `dynamic=True` (outside XLA only: TensorFlow's executor takes tensors whose shapes change
  from step to step, XLA does not) lets the loop state change shape: a row leaves the state
  at the step it finishes, so later steps compute only the rows still going (a batch of mixed
  lengths no longer pays every step for its longest row), and cache axes of size 0 grow (a
  cache that starts empty and gains a position per step, such as the Transformer's
  `init_decode_cache(batch, None)`: the reorders and the attention then touch only the
  positions written so far, not a buffer for the longest decode). The results are the same.

Beam search (`beam_search`) keeps `beam_size` alive hypotheses per row. At each step it
takes the 2 * beam_size best one-token extensions (by log-probability); those of the best
beam_size that end in EOS become finished hypotheses, scored by log-probability / length
penalty with tensor2tensor's penalty ((5 + length) / 6) ** alpha, where length counts the
positions up to and including EOS; the best beam_size extensions that do not end in EOS are
the next alive hypotheses. A row is done when it holds beam_size finished hypotheses, or at
its length limit, where its alive hypotheses join the finished ones (scored at that length).
Holding beam_size finished hypotheses is not enough when an improbable EOS extension can
reach them (a small vocabulary): the row also needs its best alive hypothesis to score no
better than its worst finished one. `early_stop=True` (the default) compares that alive
score at the current length, as most toolkits do; `early_stop=False` is tensor2tensor's exact
bound, the alive log-probability over the penalty at the row's limit, which no longer
extension can beat but which keeps every row going for several steps past its ends.
Because only EOS among the best beam_size extensions finishes a hypothesis, beam_size=1 is
exactly greedy search. (tensor2tensor finishes EOS among all 2 * beam_size candidates and
stops on a score bound instead; with beam_size=1 that can return a shorter sequence than
greedy search.)

Example:

    encoder_output, encoder_mask = model.encode(inputs)
    cache = model.init_decode_cache(batch, length, encoder_output, encoder_mask)
    ids, scores = greedy_search(model.decode_step, batch, length, cache)
    ids, scores = beam_search(model.decode_step, batch, length, cache, beam_size=4,
                              alpha=0.6)        # ids [B, 4, length], scores [B, 4]
"""
import tensorflow as tf

from t2t_lite.constants import EOS_ID

# Log-probability of an impossible hypothesis. Finite, so sums and divisions stay finite.
NEG_INF = -1e9
# Cache entries that are the same for every step (keys/values of the encoder output): beam
# search tiles them once and never reorders them (all beams of a row share them).
STATIC_CACHE_KEYS = ("memory_kv", "memory_mask")


def length_penalty(length, alpha):
  """tensor2tensor's length penalty ((5 + length) / 6) ** alpha (1.0 when alpha is 0)."""
  return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, float(alpha))


def _row_limits(batch_size, decode_length, max_lengths):
  limit = tf.cast(decode_length, tf.int32)
  if max_lengths is None:
    return tf.fill([batch_size], limit)
  return tf.minimum(tf.cast(max_lengths, tf.int32), limit)


def _prefix_at(inputs, index, rows):
  """(forced bool [rows], token int32 [rows]) of position `index`, from `_row_inputs`."""
  prefix = inputs.get("prefix")
  if prefix is None:
    return tf.zeros([rows], tf.bool), tf.zeros([rows], tf.int32)
  width = tf.shape(prefix)[1]
  forced = index < tf.minimum(inputs["prefix_length"], width)
  column = tf.minimum(index, tf.maximum(width - 1, 0))
  token = tf.cond(width > 0, lambda: tf.gather(prefix, column, axis=1),
                  lambda: tf.zeros([rows], tf.int32))
  return forced, token


def _set_column(seqs, index, values):
  """seqs[..., index] = values for an int tensor [..., L] whose column `index` is 0."""
  one_hot = tf.one_hot(index, tf.shape(seqs)[-1], dtype=seqs.dtype)
  return seqs + tf.expand_dims(values, -1) * one_hot


def _keep_shapes(new_state, old_state):
  """Gives each loop variable its static shape from before the step (reshapes and gathers
  by computed indices lose it, and tf.while_loop needs it unchanged)."""
  def fix(new, old):
    new = tf.convert_to_tensor(new)
    if not tf.executing_eagerly():
      new.set_shape(old.shape)
    return new
  return tf.nest.map_structure(fix, new_state, old_state)


def _wrap_body(body):
  def wrapped(*state):
    return _keep_shapes(body(*state), state)
  return wrapped


def _while(cond, body, state, dynamic):
  """tf.while_loop over `state`; with `dynamic`, every tensor's axis 0 (the rows, which leave
  as they finish) and its axes of size 0 (which grow) may change from step to step."""
  if not dynamic:
    return tf.while_loop(cond, _wrap_body(body), state)

  def invariant(t):
    shape = tf.convert_to_tensor(t).shape
    if shape.rank is None or shape.rank == 0:
      return shape
    return tf.TensorShape([None if axis == 0 or size == 0 else size
                           for axis, size in enumerate(shape.as_list())])

  return tf.while_loop(cond, _wrap_body(body), state,
                       shape_invariants=tf.nest.map_structure(invariant, state))


def _row_inputs(batch_size, limits, prefix, prefix_length):
  """The per-row inputs of a search (with `dynamic`, rows leave them as they finish): the
  row's index in the batch, its length limit and its prefix."""
  inputs = {"row": tf.range(batch_size), "limit": limits}
  if prefix is not None:
    prefix = tf.cast(prefix, tf.int32)
    if prefix_length is None:
      prefix_length = tf.fill([batch_size], tf.shape(prefix)[1])
    inputs["prefix"] = prefix
    inputs["prefix_length"] = tf.cast(prefix_length, tf.int32)
  return inputs


def _write_rows(results, row, values):
  """results[name][row[j]] = values[name][j] for each result (a full-batch tensor)."""
  index = tf.expand_dims(row, 1)
  return {name: tf.tensor_scatter_nd_update(result, index, values[name])
          for name, result in results.items()}


def _drop_finished(done, state, results, caches, keep=None):
  """Writes the rows that are done into `results` (at their index in the batch) and removes
  them from `state` (dicts of per-row tensors, one holding the inputs' "row") and from each
  cache of `caches`, a tuple of (cache, its rows per row: beam_size, or 1 for a cache shared
  by the beams). Returns (state, results, the caches). `keep`: the rows not done
  (`_kept_rows`), where the caller has them already. On a step where no row finished,
  nothing is computed or copied."""
  caches, sizes = tuple(c for c, _ in caches), tuple(size for _, size in caches)

  def drop():
    kept = _kept_rows(done) if keep is None else keep
    finished = tf.where(done)[:, 0]
    rows, inputs = state
    new_results = _write_rows(results, tf.gather(inputs["row"], finished),
                              {name: tf.gather(rows[name], finished) for name in results})
    new_caches = []
    for cache, size in zip(caches, sizes):
      cache_keep = kept
      if size > 1:
        cache_keep = tf.reshape(kept[:, None] * size + tf.range(size), [-1])
      new_caches.append(tf.nest.map_structure(lambda t, i=cache_keep: tf.gather(t, i), cache))
    return (tf.nest.map_structure(lambda t: tf.gather(t, kept), state), new_results,
            tuple(new_caches))

  return tf.cond(tf.reduce_any(done), drop, lambda: (state, results, caches))


def _search_loop(cond, body, rows, inputs, results, cache, dynamic):
  """Runs a search's loop from its first state: (step 0, rows, inputs, results, cache), the
  inputs in the state only with `dynamic` (else the body reads them from its closure), the
  results empty without it. Returns the final rows: with `dynamic`, every row of the batch,
  those that left the loop early written back at their index."""
  state = (tf.constant(0, tf.int32), rows, inputs if dynamic else {}, results, cache)
  _, rows, inputs, results, _ = _while(cond, body, state, dynamic)
  if dynamic:  # the rows cut off by decode_length are still in the loop's state
    rows = _write_rows(results, inputs["row"], rows)
  return rows


def _kept_rows(done):
  return tf.cast(tf.where(tf.logical_not(done))[:, 0], tf.int32)


def greedy_search(step_fn, batch_size, decode_length, cache, eos_id=EOS_ID, max_lengths=None,
                  prefix=None, prefix_length=None, dynamic=False):
  """Greedy (argmax) decoding with a cache.

  Args:
    step_fn: (ids int32 [B], cache, index) -> (logits float32 [B, V], new_cache).
    batch_size: B (int or scalar int tensor).
    decode_length: the number of output positions (int or scalar int tensor); the cache
      must hold that many (or grow, with `dynamic`).
    cache: the initial cache (a nest of tensors with first axis B).
    eos_id: the id that ends a sequence; None decodes every row to its limit.
    max_lengths: optional int [B], each row's limit (default decode_length).
    prefix: optional int [B, P], tokens forced at the first positions (a prompt).
    prefix_length: optional int [B], how many of `prefix`'s tokens each row forces
      (default P).
    dynamic: finished rows leave the loop and cache axes of size 0 grow (see the module
      docstring); not under XLA.

  Returns:
    (ids int32 [B, decode_length], scores float32 [B]): the tokens (EOS included, 0 after
    it) and the sum of the log-probabilities of the tokens chosen (forced ones excluded).
  """
  limits = _row_limits(batch_size, decode_length, max_lengths)
  inputs = all_inputs = _row_inputs(batch_size, limits, prefix, prefix_length)
  rows = {"ids": tf.zeros([batch_size, decode_length], tf.int32),
          "scores": tf.zeros([batch_size], tf.float32),
          "last": tf.zeros([batch_size], tf.int32), "done": limits <= 0}
  results = {name: tf.zeros_like(rows[name]) for name in ("ids", "scores")} if dynamic else {}

  def cond(i, rows, inputs, results, cache):
    del inputs, results, cache
    return tf.logical_and(i < decode_length, tf.logical_not(tf.reduce_all(rows["done"])))

  def body(i, rows, loop_inputs, results, cache):
    inputs = loop_inputs if dynamic else all_inputs
    logits, cache = step_fn(rows["last"], cache, i)
    done = rows["done"]
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    forced, forced_token = _prefix_at(inputs, i, tf.shape(token)[0])
    token = tf.where(forced, forced_token, token)
    token = tf.where(done, tf.zeros_like(token), token)
    token_log_prob = tf.gather(log_probs, token, axis=1, batch_dims=1)
    finished = i + 1 >= inputs["limit"]
    if eos_id is not None:
      finished = tf.logical_or(finished, tf.logical_and(tf.equal(token, eos_id),
                                                        tf.logical_not(forced)))
    rows = {"ids": _set_column(rows["ids"], i, token),
            "scores": rows["scores"] + tf.where(tf.logical_or(done, forced), 0.0,
                                                token_log_prob),
            "last": token, "done": tf.logical_or(done, finished)}
    if dynamic:
      (rows, loop_inputs), results, (cache,) = _drop_finished(
          rows["done"], (rows, inputs), results, ((cache, 1),))
    return i + 1, rows, loop_inputs, results, cache

  rows = _search_loop(cond, body, rows, inputs, results, cache, dynamic)
  return rows["ids"], rows["scores"]


def _map_cache(fn, cache, static_keys):
  """Applies fn to every tensor of the cache except those under `static_keys`."""
  if isinstance(cache, dict):
    return {k: v if k in static_keys else _map_cache(fn, v, ()) for k, v in cache.items()}
  return tf.nest.map_structure(fn, cache)


def _split_cache(cache, static_keys):
  """(the entries under `static_keys`, the others) of a dict cache; ({}, cache) otherwise."""
  if not isinstance(cache, dict):
    return {}, cache
  return ({k: v for k, v in cache.items() if k in static_keys},
          {k: v for k, v in cache.items() if k not in static_keys})


def tile_beams(x, beam_size):
  """[B, ...] -> [B * beam_size, ...]: each row repeated beam_size times (rows b*K .. b*K+K-1)."""
  return tf.repeat(x, beam_size, axis=0)


def beam_search(step_fn, batch_size, decode_length, cache, beam_size, alpha=0.6,
                eos_id=EOS_ID, max_lengths=None, prefix=None, prefix_length=None,
                static_cache_keys=STATIC_CACHE_KEYS, early_stop=True, dynamic=False,
                shared_cache_keys=()):
  """Beam search with a cache (see the module docstring for the algorithm).

  Args:
    step_fn: (ids int32 [B*K], cache, index) -> (logits float32 [B*K, V], new_cache).
    batch_size: B (int or scalar int tensor).
    decode_length: the number of output positions; the cache must hold that many (or grow,
      with `dynamic`).
    cache: the initial cache for B rows (first axis B); it is tiled to B * beam_size rows
      (row b's beams are rows b*K .. b*K+K-1) and reordered as beams are chosen, except the
      entries under `static_cache_keys`, which are only tiled, and those under
      `shared_cache_keys`, which are not even tiled.
    beam_size: K, the number of hypotheses kept (int).
    alpha: the length penalty's exponent; 0 ranks by log-probability alone.
    eos_id: the id that ends a hypothesis; None decodes every row to its limit.
    max_lengths: optional int [B], each row's limit (default decode_length).
    prefix: optional int [B, P], tokens forced at the first positions (a prompt).
    prefix_length: optional int [B], how many of `prefix`'s tokens each row forces.
    static_cache_keys: top-level cache keys whose tensors never change during decoding.
    shared_cache_keys: top-level cache keys whose tensors never change and which every beam
      of a row reads alike: step_fn gets them with one row per batch row (the beams of row b,
      rows b*K .. b*K+K-1 of ids, all read row b), so they are neither copied K times nor
      gathered K times over as rows finish. The Transformer's encoder keys and values
      (`Transformer.beam_shared_cache_keys`): its cross-attention reads the beams of a row
      as K queries of one memory row.
    early_stop: how a row with beam_size finished hypotheses decides it is done (see the
      module docstring): its best alive score at the current length (True) or at the row's
      limit (False, tensor2tensor's).
    dynamic: finished rows leave the loop and cache axes of size 0 grow (see the module
      docstring); not under XLA.

  Returns:
    (ids int32 [B, K, decode_length], scores float32 [B, K]): the K best hypotheses of each
    row, best first, and their scores (log-probability / length penalty). A slot that no
    hypothesis reached (possible only when K * vocab is tiny) has score <= NEG_INF / 2.
  """
  beam_size = int(beam_size)
  if beam_size < 1:
    raise ValueError("beam_search: beam_size must be >= 1; got %d." % beam_size)
  k = beam_size
  limits = _row_limits(batch_size, decode_length, max_lengths)
  inputs = all_inputs = _row_inputs(batch_size, limits, prefix, prefix_length)
  cache = _map_cache(lambda t: tile_beams(t, k), cache, shared_cache_keys)
  static_cache_keys = tuple(static_cache_keys) + tuple(shared_cache_keys)
  seqs = tf.zeros([batch_size, k, decode_length], tf.int32)
  # Only the first beam is alive at the start, so the first step does not pick K copies.
  rows = {"last": tf.zeros([batch_size, k], tf.int32), "alive_seqs": seqs,
          "alive_log_probs": tf.tile(tf.constant([[0.0] + [NEG_INF] * (k - 1)]),
                                     [batch_size, 1]),
          "finished_seqs": seqs, "finished_scores": tf.fill([batch_size, k], NEG_INF),
          "done": limits <= 0}
  results = ({name: rows[name] for name in ("finished_seqs", "finished_scores")}
             if dynamic else {})

  def cond(i, rows, inputs, results, cache):
    del inputs, results, cache
    return tf.logical_and(i < decode_length, tf.logical_not(tf.reduce_all(rows["done"])))

  def body(i, rows, loop_inputs, results, cache):
    inputs = loop_inputs if dynamic else all_inputs
    alive_seqs, alive_log_probs, done = rows["alive_seqs"], rows["alive_log_probs"], rows["done"]
    finished_seqs, finished_scores = rows["finished_seqs"], rows["finished_scores"]
    n = tf.shape(done)[0]  # the rows in the loop (all B unless dynamic)
    logits, cache = step_fn(tf.reshape(rows["last"], [-1]), cache, i)
    vocab_size = tf.shape(logits)[-1]
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    log_probs = tf.reshape(log_probs, [n, k, vocab_size])
    candidates = tf.expand_dims(alive_log_probs, 2) + log_probs  # [B, K, V]
    forced = None
    if "prefix" in inputs:  # (a select over every candidate each step costs, so only then)
      forced, forced_token = _prefix_at(inputs, i, n)
      allowed = tf.cast(tf.one_hot(forced_token, vocab_size), tf.bool)[:, None, :]  # [B, 1, V]
      forced_scores = tf.where(allowed, tf.expand_dims(alive_log_probs, 2), NEG_INF)
      candidates = tf.where(forced[:, None, None], forced_scores, candidates)

    # The 2K best extensions: at most K of them end in EOS, so K others always remain.
    top_log_probs, top_index = tf.math.top_k(tf.reshape(candidates, [n, -1]), 2 * k)
    top_beam = top_index // vocab_size
    top_token = top_index % vocab_size
    valid = top_log_probs > NEG_INF / 2
    if eos_id is None:
      top_eos = tf.zeros_like(valid)
    else:
      top_eos = tf.equal(top_token, eos_id) & valid
      if forced is not None:
        top_eos = top_eos & tf.logical_not(forced)[:, None]
    top_seqs = _set_column(tf.gather(alive_seqs, top_beam, batch_dims=1), i, top_token)
    length = i + 1
    penalty = length_penalty(length, alpha)

    # Next alive beams: the K best extensions that do not end in EOS.
    alive_keys = tf.where(top_eos, 2.0 * NEG_INF, top_log_probs)
    _, alive_pick = tf.math.top_k(alive_keys, k)
    new_alive_log_probs = tf.gather(top_log_probs, alive_pick, batch_dims=1)
    new_alive_seqs = tf.gather(top_seqs, alive_pick, batch_dims=1)
    new_last = tf.gather(top_token, alive_pick, batch_dims=1)
    new_alive_beam = tf.gather(top_beam, alive_pick, batch_dims=1)

    # Finished: EOS among the K best extensions; at a row's limit, its alive beams as well.
    eos_scores = tf.where(top_eos[:, :k], top_log_probs[:, :k] / penalty, NEG_INF)
    at_limit = length >= inputs["limit"]  # [B]
    alive_valid = (new_alive_log_probs > NEG_INF / 2) & at_limit[:, None]
    limit_scores = tf.where(alive_valid, new_alive_log_probs / penalty, NEG_INF)
    pool_scores = tf.concat([finished_scores, eos_scores, limit_scores], axis=1)  # [B, 3K]
    pool_seqs = tf.concat([finished_seqs, top_seqs[:, :k], new_alive_seqs], axis=1)
    merged_scores, merged_pick = tf.math.top_k(pool_scores, k)
    merged_seqs = tf.gather(pool_seqs, merged_pick, batch_dims=1)
    # A row that is already done keeps its hypotheses (it decodes as if it had stopped).
    keep = done[:, None]
    finished_scores = tf.where(keep, finished_scores, merged_scores)
    finished_seqs = tf.where(keep[:, :, None], finished_seqs, merged_seqs)
    full = tf.reduce_all(finished_scores > NEG_INF / 2, axis=1)
    if k > 1:
      # K finished hypotheses settle a row only when no alive beam scores better (stopping on
      # the count alone lets improbable early-EOS extensions, which easily reach the top K with
      # a small vocabulary, end the search). The exact bound (tensor2tensor's) scores an alive
      # beam at the row's limit: log-probabilities only fall as a beam grows.
      horizon = length if early_stop else inputs["limit"]
      best_alive = tf.reduce_max(new_alive_log_probs, axis=1) / length_penalty(horizon, alpha)
      full = full & (best_alive <= tf.reduce_min(finished_scores, axis=1))
    # With K = 1 the search is greedy: the single hypothesis ends at its EOS.
    done = done | at_limit | full

    rows = {"last": new_last, "alive_seqs": new_alive_seqs,
            "alive_log_probs": new_alive_log_probs, "finished_seqs": finished_seqs,
            "finished_scores": finished_scores, "done": done}
    # The cache rows of the chosen beams (with `dynamic`, of the rows still going only: the
    # reorder drops the others at no extra cost).
    beams = tf.range(n)[:, None] * k + new_alive_beam  # [B, K]
    if dynamic:
      kept = _kept_rows(done)
      beams = tf.gather(beams, kept)
      static, cache = _split_cache(cache, static_cache_keys)
      shared, static = _split_cache(static, shared_cache_keys)
      (rows, loop_inputs), results, (static, shared) = _drop_finished(
          done, (rows, inputs), results, ((static, k), (shared, 1)), keep=kept)
      cache = dict(cache, **static, **shared)
    flat_beam = tf.reshape(beams, [-1])
    cache = _map_cache(lambda t: tf.gather(t, flat_beam), cache, static_cache_keys)
    return length, rows, loop_inputs, results, cache

  rows = _search_loop(cond, body, rows, inputs, results, cache, dynamic)
  return rows["finished_seqs"], rows["finished_scores"]
