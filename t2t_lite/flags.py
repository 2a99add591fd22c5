"""The absl flags shared by t2t-trainer, t2t-datagen and t2t-decoder, and what reads them.

Importing this module defines the flags (once per process) on `absl.flags.FLAGS`; the scripts
parse them. tensor2tensor's names and meanings are kept, so its tutorials still read right.

    t2t-trainer --problem=algorithmic_reverse_binary40 --model=transformer \\
        --hparams_set=transformer_tiny --hparams="batch_size=1024,dropout=0.2" \\
        --hp_learning_rate_constant 0.5 --data_dir=~/t2t_data --output_dir=~/t2t_train/rev

`--hparams` takes the syntax in `t2t_lite.hparams` (quote strings that contain `,` or `=`).
Any `--hp_NAME VALUE` or `--hp_NAME=VALUE` on the command line is appended to it (see
`set_hparams_from_args`).

Flags whose default differs from tensor2tensor, and why
-------------------------------------------------------

| Flag                      | tensor2tensor      | t2t_lite             | Why                                           |
|---------------------------|--------------------|----------------------|-----------------------------------------------|
| `--train_steps`           | 250000             | 2000                 | A first run should finish in minutes on a laptop; pass a larger value for real training (the hparams sets' docstrings give theirs). |
| `--random_seed`           | None (unseeded)    | 1234                 | Two runs of the same command give the same result; pass another seed to vary it. |
| `--worker_gpu`            | 1                  | None: every visible GPU | tf.distribute mirrors over all GPUs at no cost to the user; set it to use fewer. |
| `--t2t_usr_dir`           | one string         | repeatable, and/or a comma list; a folder, a .py file or a module name | Several user directories in one run. |
| `--tpu`                   | `--cloud_tpu_name`/`--master` | `--tpu` (name or grpc:// address) | tf.distribute's TPUClusterResolver takes one. |
| `--distribution_strategy` | (none)             | auto                 | New: picks TPU, multi-worker (TF_CONFIG), mirrored (>1 GPU) or default. |
| `--tmp_dir`               | /tmp/t2t_datagen   | <system temp dir>/t2t_datagen | The same on Linux; also right on macOS and Windows. |
| `--output_dir`            | ""                 | None                 | Unset is unset; the scripts say which flag is missing. |
| `--overwrite_output_hparams`, `--overwrite`, `--decode_interactive` | (none) | False | New: see their help. |

Every other flag keeps tensor2tensor's default: `--eval_steps=100`,
`--local_eval_frequency=1000`, `--schedule=continuous_train_and_eval`,
`--keep_checkpoint_max=20`, `--log_step_count_steps=100`, `--save_checkpoints_steps=None`
(= `--local_eval_frequency`), `--hparams=""`, `--decode_hparams=""`, the booleans False.
"""
import os
import tempfile

from absl import flags
from absl import logging

from t2t_lite import constants
from t2t_lite.common_hparams import create_hparams  # noqa: F401  (the scripts' name for it)
from t2t_lite.constants import DISTRIBUTION_STRATEGIES, SCHEDULES
from t2t_lite.errors import HParamsError

FLAGS = flags.FLAGS

DEFAULT_RANDOM_SEED = 1234
HP_PREFIXES = ("--hp_", "-hp_")


def define_once(define, name, *args, **kwargs):
  """Defines flag `name` with `define` (e.g. `flags.DEFINE_string`) unless it already exists.

  Defining twice in one process (a module imported under two names, a script's own flags
  next to these) keeps the first definition instead of raising DuplicateFlagError.
  """
  if name not in FLAGS:
    define(name, *args, **kwargs)


_define = define_once  # the short name of this module's own definitions below (private)


# What to run.
_define(flags.DEFINE_string, "problem", None,
        "Registered problem name, e.g. algorithmic_reverse_binary40 (NAME_rev swaps inputs "
        "and targets, NAME_copy copies inputs to targets).")
_define(flags.DEFINE_string, "model", None, "Registered model name, e.g. transformer.")
_define(flags.DEFINE_string, "hparams_set", None,
        "Registered hparams set name, e.g. transformer_tiny.")
_define(flags.DEFINE_string, "hparams", "",
        "Comma-separated overrides of the hparams set: \"a=1,b=2.5,c=true,d=[1,2],e='x,y'\". "
        "--hp_NAME VALUE arguments are appended to it.")
_define(flags.DEFINE_multi_string, "t2t_usr_dir", None,
        "Your own problems/models/hparams sets: a directory (a package, or a folder whose .py "
        "files are all imported), a .py file or a dotted module name. Repeat the flag or give "
        "a comma-separated list.")
_define(flags.DEFINE_boolean, "registry_help", False,
        "Print the registered problems, models and hparams sets, and exit.")

# Where things are.
_define(flags.DEFINE_string, "data_dir", None, "Directory of the problem's data shards.")
_define(flags.DEFINE_string, "output_dir", None,
        "Directory for checkpoints, summaries, hparams.json and flags.txt.")
_define(flags.DEFINE_string, "tmp_dir", os.path.join(tempfile.gettempdir(), "t2t_datagen"),
        "Directory for downloads and intermediate files of data generation.")

# Data generation.
_define(flags.DEFINE_boolean, "generate_data", False,
        "t2t-trainer: generate the problem's data in --data_dir first, if it is missing.")
_define(flags.DEFINE_boolean, "overwrite", False,
        "t2t-datagen: regenerate shards that are already complete.")

# Training.
_define(flags.DEFINE_integer, "train_steps", 2000,
        "Total number of training steps (tensor2tensor: 250000).")
_define(flags.DEFINE_integer, "eval_steps", constants.DEFAULT_EVAL_STEPS,
        "Number of batches per evaluation.")
_define(flags.DEFINE_integer, "local_eval_frequency", constants.DEFAULT_LOCAL_EVAL_FREQUENCY,
        "Evaluate (and save a checkpoint) every this many training steps.")
_define(flags.DEFINE_string, "schedule", constants.DEFAULT_SCHEDULE,
        "What to run: %s." % ", ".join(SCHEDULES))
_define(flags.DEFINE_integer, "random_seed", DEFAULT_RANDOM_SEED,
        "Seed for Python, NumPy and TensorFlow.")
_define(flags.DEFINE_integer, "keep_checkpoint_max", constants.DEFAULT_KEEP_CHECKPOINT_MAX,
        "How many recent checkpoints to keep.")
_define(flags.DEFINE_integer, "save_checkpoints_steps", None,
        "Save a checkpoint every this many steps; None: every --local_eval_frequency steps.")
_define(flags.DEFINE_integer, "log_step_count_steps", constants.DEFAULT_LOG_STEP_COUNT_STEPS,
        "Log the loss and steps per second every this many steps.")
_define(flags.DEFINE_integer, "eval_bleu_samples", 0,
        "At each evaluation also decode this many dev examples (with --decode_hparams) and "
        "report their sacreBLEU as `bleu` (summaries, eval_results.json); 0: don't.")
_define(flags.DEFINE_string, "keep_best_by", None,
        "Keep the model with the best value of this eval metric (e.g. bleu, accuracy; loss is "
        "lower-is-better) in OUTPUT_DIR/best, a run directory t2t-decoder accepts; "
        "--export_saved_model then exports it.")
_define(flags.DEFINE_integer, "average_last_checkpoints", 0,
        "After training, average the last N checkpoints into OUTPUT_DIR/avg (as t2t-avg-all "
        "does); 0: don't.")
_define(flags.DEFINE_boolean, "overwrite_output_hparams", False,
        "Take this run's hparams over the hparams.json already in --output_dir (by default a "
        "difference is an error).")

# Hardware.
_define(flags.DEFINE_enum, "distribution_strategy", "auto", list(DISTRIBUTION_STRATEGIES),
        "auto: tpu if --use_tpu/--tpu, multi_worker_mirrored if TF_CONFIG names several "
        "workers, mirrored if more than one GPU, else default.")
_define(flags.DEFINE_boolean, "use_tpu", False, "Train on a TPU.")
_define(flags.DEFINE_string, "tpu", None,
        "TPU name or grpc:// address for TPUClusterResolver ('' or 'local' for a TPU VM).")
_define(flags.DEFINE_integer, "worker_gpu", None,
        "GPUs to use on this worker; None: every visible GPU.")

# Decoding and export.
_define(flags.DEFINE_string, "decode_from_file", None, "Decode the lines of this file.")
_define(flags.DEFINE_string, "decode_to_file", None,
        "Write the decodes here (default: --decode_from_file with a suffix).")
_define(flags.DEFINE_string, "decode_hparams", "",
        "Overrides of the decoding hparams, e.g. \"beam_size=4,alpha=0.6\".")
_define(flags.DEFINE_boolean, "decode_interactive", False,
        "t2t-decoder: read inputs from stdin and print each decode.")
_define(flags.DEFINE_boolean, "export_saved_model", False,
        "t2t-trainer: after training, export a SavedModel (feature dict -> logits) to "
        "OUTPUT_DIR/export. t2t-decoder: export a SavedModel (strings -> decoded strings) to "
        "--export_dir (default OUTPUT_DIR/export_decoder).")


def set_hparams_from_args(args):
  """Appends `--hp_NAME VALUE` / `--hp_NAME=VALUE` arguments to `FLAGS.hparams`.

  Call it with the arguments absl left unparsed (`argv[1:]` of the script's main). Each
  setting is added as `NAME=VALUE` after what `--hparams` already holds, comma-joined, so a
  later setting of the same name is an error when the hparams are parsed. VALUE is in the
  `--hparams` syntax (quote strings that contain `,` or `=`). Any other argument is logged as
  a warning and ignored.

  Args:
    args: a list of strings.

  Raises:
    HParamsError: for `--hp_NAME` with no value, or an empty NAME.
  """
  settings = []
  i = 0
  args = list(args or [])
  while i < len(args):
    arg = args[i]
    prefix = next((p for p in HP_PREFIXES if arg.startswith(p)), None)
    if prefix is None:
      logging.warning("Ignoring unknown command-line argument %r (hparams are set with "
                      "--hparams or --hp_NAME VALUE).", arg)
      i += 1
      continue
    body = arg[len(prefix):]
    if "=" in body:
      name, value = body.split("=", 1)
      i += 1
    else:
      if i + 1 >= len(args) or args[i + 1].startswith("--"):
        raise HParamsError("%s needs a value: %s VALUE or %s=VALUE." % (arg, arg, arg))
      name, value = body, args[i + 1]
      i += 2
    if not name:
      raise HParamsError("%r: expected --hp_NAME=VALUE." % arg)
    settings.append("%s=%s" % (name, value))
  if settings:
    current = (FLAGS.hparams or "").strip().rstrip(",")
    FLAGS.hparams = ",".join([current] + settings if current else settings)


def flags_text():
  """The parsed command-line flags as an absl flag file (for OUTPUT_DIR/flags.txt), or None
  when absl has not parsed them (a library call)."""
  return FLAGS.flags_into_string() if FLAGS.is_parsed() else None
