"""The hparams every model and problem shares (tensor2tensor's basic_params1, trimmed).

Problems read the batching hparams; the trainer reads the optimizer, schedule and precision
hparams; a model's hparams set starts from `basic_params1()` and adds its own. This is the one
home of these defaults: code that reads an hparam a partial HParams may lack falls back to
`default(name)`, never to a value of its own.
"""
from t2t_lite import registry
from t2t_lite.errors import ConfigError, HParamsError
from t2t_lite.hparams import HParams


@registry.register_hparams
def basic_params1():
  """The shared defaults; not a trainable set on its own (it names no model sizes)."""
  return HParams(
      # Batching (read by Problem.dataset). For sequence problems batch_size is the number of
      # tokens per replica per batch; for fixed-size problems, the number of examples.
      batch_size=4096,
      max_length=256,  # longer training examples are dropped; 0 means batch_size
      min_length_bucket=8,
      length_bucket_step=1.1,
      eval_drop_long_sequences=False,
      fixed_batch_shapes=False,  # TPU: pad to max_length, drop_remainder=True
      # Packed training rows (t2t_lite.data.packing): several examples a row of packed_length
      # tokens, batch_size // packed_length rows a batch, attention and loss within each
      # example. -1: the problem decides (Problem.packed_length: max_length for text2text and
      # language-model problems, 0 for the others); 0: off; N > 0: rows of N tokens. Only
      # training batches are packed; examples longer than a row are dropped.
      packed_length=-1,
      shuffle_buffer_size=1024,
      deterministic_data=False,  # deterministic tf.data order for reproducible runs
      # Model basics (every registered model reads these).
      hidden_size=64,
      num_hidden_layers=2,
      dropout=0.1,
      # Cross-entropy against (1 - label_smoothing) on the label and label_smoothing spread
      # over the other classes (t2t_lite.models.losses); 0.0 is plain cross-entropy.
      label_smoothing=0.1,
      # Tie the target embedding and the output softmax (models with a symbol output).
      shared_embedding_and_softmax_weights=False,
      # Optimization (read by the trainer).
      optimizer="adam",  # adam | adafactor | sgd
      optimizer_adam_beta1=0.9,
      optimizer_adam_beta2=0.997,
      optimizer_adam_epsilon=1e-9,
      optimizer_momentum_momentum=0.9,
      optimizer_momentum_nesterov=False,
      weight_decay=0.0,
      clip_grad_norm=0.0,  # 0 means no clipping
      # > 0: the optimizer keeps an exponential moving average of the weights (keras's
      # use_ema / ema_momentum), and evaluation, decoding and export use the average.
      ema_momentum=0.0,
      learning_rate_schedule="noam",  # noam | constant | cosine | wsd
      learning_rate_constant=2.0,
      learning_rate_warmup_steps=4000,
      # cosine: the decay's length (0: train_steps); wsd: the final decay's (0: a fifth of
      # train_steps).
      learning_rate_decay_steps=0,
      learning_rate_min_fraction=0.0,  # cosine's and wsd's floor, a fraction of the peak
      iterations_per_loop=10,  # train steps per tf.function call
      xla_compile=False,
      # The Keras dtype policy of the model's layers: "" (float32) | mixed_float16 |
      # mixed_bfloat16 | auto (mixed_bfloat16 where the hardware computes bfloat16 natively,
      # else float32; see `dtype_policy`).
      mixed_precision="",
  )


_DEFAULTS = None


def default(name):
  """basic_params1's value of `name` (KeyError if it has none)."""
  global _DEFAULTS
  if _DEFAULTS is None:
    _DEFAULTS = basic_params1().values()
  return _DEFAULTS[name]


def get(hparams, name):
  """`hparams.name`, or basic_params1's value when `hparams` (None, a partial HParams or a
  dict) does not set it."""
  if hparams is not None:
    value = hparams.get(name) if isinstance(hparams, dict) else getattr(hparams, name, None)
    if value is not None:
      return value
  return default(name)


MIXED_PRECISION = ("", "float32", "mixed_float16", "mixed_bfloat16", "auto")


def dtype_policy(value, inference=False):
  """The Keras dtype policy name for a `mixed_precision` value, or None for float32.

  "auto" is "mixed_bfloat16" where the hardware computes bfloat16 natively (a TPU, GPUs of
  compute capability 8.0 or newer, CPUs with AVX512-BF16 or AMX:
  `t2t_lite.utils.hardware.native_bfloat16`) and float32 elsewhere, where bfloat16 is emulated
  and slower than float32. For `inference` (decoding) on a CPU it is float32 in any case:
  decoding is XLA-compiled there, and XLA's CPU code for bfloat16 is the slower one
  (transformer_tiny, 32 sequences of 41 tokens: greedy 1121 against 1040 sequences/s, beam 4
  464 against 314).

  Raises:
    HParamsError: an unknown value.
  """
  value = value or ""
  if value not in MIXED_PRECISION:
    raise HParamsError("mixed_precision=%s: unknown; use one of %s." % (
        value, ", ".join(repr(v) for v in MIXED_PRECISION)))
  if value == "auto":
    from t2t_lite.utils import hardware  # pylint: disable=g-import-not-at-top
    native = hardware.native_bfloat16() and not (inference and not hardware.accelerator())
    value = "mixed_bfloat16" if native else ""
  return None if value in ("", "float32") else value


def create_hparams(hparams_set, overrides="", problem_name=None):
  """The hparams set `hparams_set` with `overrides` (an `--hparams` string) applied.

  The result also records where it came from, so that hparams.json in an output_dir says
  which set and problem a run used, and `save_or_check_hparams` notices a run pointed at the
  same output_dir with another set or problem: `hparams_set` (a str) always, and
  `problem_name` (a str) when given. An hparams set that defines these names itself keeps
  its own (a str one is set to the name). Overrides cannot change them.

  Args:
    hparams_set: a registered hparams set name.
    overrides: a string for `HParams.parse`, e.g. "batch_size=1024,dropout=0.2".
    problem_name: the problem's name, as given to --problem; None records nothing.

  Returns:
    A new HParams.

  Raises:
    UnknownNameError: for an unknown hparams set (with close matches).
    HParamsError: for a bad overrides string.
  """
  if not hparams_set:
    raise ConfigError("--hparams_set is required. %s" % _list_hint(registry.list_hparams()))
  hp = registry.hparams(hparams_set)
  if not isinstance(hp, HParams):
    raise ConfigError("hparams set %r returned a %s, not an HParams." %
                      (hparams_set, type(hp).__name__))
  hp.parse(overrides or "")
  _record(hp, "hparams_set", hparams_set)
  if problem_name is not None:
    _record(hp, "problem_name", problem_name)
  return hp


def _record(hp, name, value):
  if name not in hp:
    hp.add_hparam(name, value)
  elif hp.get(name) is None or isinstance(hp.get(name), str):
    hp.set_hparam(name, value)


def _list_hint(names):
  if not names:
    return "None are registered; import your own with --t2t_usr_dir."
  return "Registered: %s." % ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
