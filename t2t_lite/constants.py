"""The facts every part of t2t_lite shares, each defined once here (no TensorFlow imported).

- Reserved token ids: every symbol vocabulary starts with PAD (0) and EOS (1).
- Modes a dataset is read for (`ModeKeys`), the trainer's schedules and the defaults that
  t2t-trainer's flags and the Trainer's arguments share.
- The names of the files and folders t2t_lite writes in an output_dir and a data_dir.
"""

# -- reserved tokens ---------------------------------------------------------------------------
PAD = "<pad>"
EOS = "<EOS>"
RESERVED_TOKENS = (PAD, EOS)
NUM_RESERVED_TOKENS = len(RESERVED_TOKENS)
PAD_ID = RESERVED_TOKENS.index(PAD)  # 0: padding; targets with this id get loss weight 0
EOS_ID = RESERVED_TOKENS.index(EOS)  # 1: end of sequence


class ModeKeys:
  """The modes a dataset is read for (tensor2tensor's / tf.estimator's names)."""
  TRAIN = "train"
  EVAL = "eval"
  PREDICT = "infer"


# -- schedules (t2t-trainer --schedule) --------------------------------------------------------
SCHEDULES = ("train", "evaluate", "train_and_evaluate", "continuous_train_and_eval",
             "continuous_eval")
# The schedules that train (and so write checkpoints and take the output_dir's lock).
TRAINING_SCHEDULES = ("train", "train_and_evaluate", "continuous_train_and_eval")

# -- the trainer's defaults: t2t-trainer's flags and the Trainer's arguments (tensor2tensor's) --
DEFAULT_SCHEDULE = "continuous_train_and_eval"
DEFAULT_EVAL_STEPS = 100  # batches per evaluation
# Evaluate every this many steps; also the checkpoint interval unless --save_checkpoints_steps.
DEFAULT_LOCAL_EVAL_FREQUENCY = 1000
DEFAULT_KEEP_CHECKPOINT_MAX = 20  # checkpoints kept
DEFAULT_LOG_STEP_COUNT_STEPS = 100  # a log line (and train summaries) every this many steps

DISTRIBUTION_STRATEGIES = ("auto", "default", "mirrored", "multi_worker_mirrored", "tpu")

# -- files in an output_dir --------------------------------------------------------------------
HPARAMS_FILENAME = "hparams.json"  # the run's model hparams, checked on every resume
LOOP_HPARAMS_FILENAME = "loop_hparams.json"  # the model-based loop's own hparams
VOCAB_FILENAME = "vocab.json"  # the fingerprint of the vocabulary the run was trained with
FLAGS_FILENAME = "flags.txt"  # the latest command's flags, as an absl flag file
EVAL_RESULTS_FILENAME = "eval_results.json"  # the latest evaluation
LOCK_FILENAME = ".t2t_lock"  # held by the training run that owns the output_dir
CHECKPOINT_NAME = "ckpt"  # checkpoints are OUTPUT_DIR/ckpt-STEP.*
TRAIN_SUMMARY_DIR = "train"  # tf.summary event files of training
EVAL_SUMMARY_DIR = "eval"  # tf.summary event files of evaluation
EXPORT_DIR = "export"  # t2t-trainer --export_saved_model: features -> logits
DECODER_EXPORT_DIR = "export_decoder"  # t2t-decoder --export_saved_model: strings -> strings
AVERAGED_DIR = "avg"  # t2t-avg-all's default output: OUTPUT_DIR/avg/ckpt-STEP
BEST_DIR = "best"  # --keep_best_by: the best model by an eval metric, OUTPUT_DIR/best/ckpt-STEP

__all__ = [
    "PAD", "EOS", "RESERVED_TOKENS", "NUM_RESERVED_TOKENS", "PAD_ID", "EOS_ID", "ModeKeys",
    "SCHEDULES", "TRAINING_SCHEDULES", "DEFAULT_SCHEDULE", "DEFAULT_EVAL_STEPS",
    "DEFAULT_LOCAL_EVAL_FREQUENCY", "DEFAULT_KEEP_CHECKPOINT_MAX", "DEFAULT_LOG_STEP_COUNT_STEPS",
    "DISTRIBUTION_STRATEGIES", "HPARAMS_FILENAME",
    "LOOP_HPARAMS_FILENAME", "VOCAB_FILENAME", "FLAGS_FILENAME", "EVAL_RESULTS_FILENAME", "LOCK_FILENAME", "CHECKPOINT_NAME",
    "TRAIN_SUMMARY_DIR", "EVAL_SUMMARY_DIR", "EXPORT_DIR", "DECODER_EXPORT_DIR", "AVERAGED_DIR",
    "BEST_DIR",
]
