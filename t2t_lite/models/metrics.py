"""Evaluation metrics under tensor2tensor's names.

Each metric is a running (numerator, denominator) pair: a batch adds its sums, replicas are
summed with an all-reduce, and the value is numerator / denominator over everything seen, so
evaluating in batches of any size on any number of replicas gives the same number.

  accuracy               share of target tokens (or examples) predicted exactly (padding ignored)
  accuracy_top5          share of target tokens whose label is in the top 5 logits
  accuracy_per_sequence  share of sequences with every target token right
  neg_log_perplexity     mean log-probability of the target tokens (no label smoothing)
  approx_bleu_score      corpus BLEU-4 of the argmax predictions against the targets, on ids
"""
import collections
import math

import numpy as np
import tensorflow as tf

from t2t_lite.constants import EOS_ID, PAD_ID

SEQUENCE_METRICS = ("accuracy", "accuracy_top5", "accuracy_per_sequence", "neg_log_perplexity")
CLASS_METRICS = ("accuracy", "accuracy_top5", "neg_log_perplexity")
HOST_METRICS = ("approx_bleu_score",)  # computed in Python from the predictions
KNOWN_METRICS = tuple(sorted(set(SEQUENCE_METRICS + CLASS_METRICS + HOST_METRICS)))


def batch_metric_sums(logits, targets, names):
  """{name: (numerator, denominator)} float32 sums for one batch.

  Args:
    logits: [B, T, V] for sequence targets or [B, C] for class labels.
    targets: int [B, T] (0 is padding) or [B].
    names: the metrics wanted (unknown ones are ignored; host metrics are not computed here).
  """
  logits = tf.cast(logits, tf.float32)
  targets = tf.cast(targets, tf.int32)
  sequence = logits.shape.rank == 3
  if sequence:
    # Cut or pad the time axes to one length (a model may emit fewer positions).
    weights = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
  else:
    weights = tf.ones(tf.shape(targets), tf.float32)
  predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
  correct = tf.cast(tf.equal(predictions, targets), tf.float32) * weights
  total = tf.reduce_sum(weights)
  out = {}
  if "accuracy" in names:
    out["accuracy"] = (tf.reduce_sum(correct), total)
  if "accuracy_top5" in names:
    flat_logits = tf.reshape(logits, [-1, tf.shape(logits)[-1]])
    flat_targets = tf.reshape(targets, [-1])
    k = tf.minimum(5, tf.shape(flat_logits)[-1])
    top = tf.math.top_k(flat_logits, k=k).indices
    hit = tf.reduce_any(tf.equal(top, flat_targets[:, None]), axis=-1)
    hit = tf.cast(hit, tf.float32) * tf.reshape(weights, [-1])
    out["accuracy_top5"] = (tf.reduce_sum(hit), total)
  if "accuracy_per_sequence" in names and sequence:
    wrong = tf.reduce_sum(weights - correct, axis=-1)
    has_tokens = tf.cast(tf.reduce_sum(weights, axis=-1) > 0, tf.float32)
    seq_right = tf.cast(tf.equal(wrong, 0.0), tf.float32) * has_tokens
    out["accuracy_per_sequence"] = (tf.reduce_sum(seq_right), tf.reduce_sum(has_tokens))
  if "neg_log_perplexity" in names:
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    picked = tf.gather(log_probs, targets, axis=-1, batch_dims=targets.shape.rank)
    out["neg_log_perplexity"] = (tf.reduce_sum(picked * weights), total)
  return out


def metric_names_for(problem_metrics, sequence):
  """The metrics to compute on-device and on the host for a problem's `eval_metrics()`."""
  wanted = list(problem_metrics) if problem_metrics else list(
      SEQUENCE_METRICS if sequence else CLASS_METRICS)
  device = [m for m in wanted if m in (SEQUENCE_METRICS if sequence else CLASS_METRICS)]
  host = [m for m in wanted if m in HOST_METRICS]
  return device, host


def _ngrams(ids, n):
  return collections.Counter(tuple(ids[i:i + n]) for i in range(len(ids) - n + 1))


class BleuAccumulator:
  """Corpus BLEU-4 with a brevity penalty and tensor2tensor's smoothing, on token ids
  (tensor2tensor's approx_bleu: a cheap teacher-forced proxy; t2t-bleu and --eval_bleu_samples
  give sacreBLEU of decoded text).

  Written here because no dependency we keep (TensorFlow, Keras, TFDS) ships a corpus BLEU; it
  is "approx" because it scores ids rather than detokenized text.
  """

  def __init__(self, max_order=4):
    self.max_order = max_order
    self.matches = [0] * max_order
    self.possible = [0] * max_order
    self.hyp_len = 0
    self.ref_len = 0

  @staticmethod
  def _strip(row):
    row = [int(t) for t in row]
    if EOS_ID in row:  # EOS ends the sequence
      row = row[:row.index(EOS_ID)]
    return [t for t in row if t != PAD_ID]

  def add_batch(self, predictions, targets):
    """predictions, targets: int arrays [B, T]."""
    for hyp, ref in zip(np.asarray(predictions), np.asarray(targets)):
      hyp, ref = self._strip(hyp), self._strip(ref)
      self.hyp_len += len(hyp)
      self.ref_len += len(ref)
      for n in range(1, self.max_order + 1):
        h, r = _ngrams(hyp, n), _ngrams(ref, n)
        self.matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
        self.possible[n - 1] += max(0, len(hyp) - n + 1)

  def result(self):
    """tensor2tensor's compute_bleu: an order with no match counts 1 / (2^k * possible) (k
    counting such orders), an order no hypothesis is long enough for is left out of the
    geometric mean (but still divides it), then the brevity penalty."""
    if self.hyp_len == 0:
      return 0.0
    precisions = []
    smooth = 1.0
    for matches, possible in zip(self.matches, self.possible):
      if possible == 0:
        precisions.append(0.0)
      elif matches:
        precisions.append(matches / possible)
      else:
        smooth *= 2.0
        precisions.append(1.0 / (smooth * possible))
    if max(precisions) <= 0.0:
      return 0.0
    geo_mean = math.exp(sum(math.log(p) for p in precisions if p) / self.max_order)
    ratio = self.hyp_len / max(1, self.ref_len)
    bp = 1.0 if ratio > 1.0 else math.exp(1.0 - 1.0 / ratio)
    return bp * geo_mean
