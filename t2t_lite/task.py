"""`Task`: the single-replica view of one training job, between problems/models and the loops.

    task = Task("algorithmic_reverse_binary40", "transformer", hparams, data_dir)
    model = task.build_model()                        # dtype policy set, weights created
    dataset = task.dataset(ModeKeys.TRAIN)            # batched tf.data of feature dicts
    loss_sum, weight_sum, tokens = task.train_step(model, optimizer, next(iter(dataset)))
    model, checkpoint = task.restore_for_inference(output_dir)

A Task owns what one job needs that does not depend on where it runs: the problem hparams
(read with the data_dir given, never from state left by an earlier call), the one way to build
the model, the datasets, the loss and the metrics, and one replica's train and eval step. The
trainer (loop, checkpoints, schedules, summaries, strategies), the decoder, the exporters and
the model-based loop consume a Task; none of them rebuilds what it owns.

The loss and the metrics have defaults that a problem or a model may override:

- loss: a problem's `loss(logits, features, problem_hparams, hparams)` method when it has one,
  else the model's `loss_sum(logits, features)` (T2TModel's is `losses.model_loss`); both
  return (loss_sum, weight_sum), summed over the batch, so replicas and steps add up exactly.
- metrics: a model class's `eval_metrics()` when it defines one, else the problem's
  `eval_metrics()`; names from `t2t_lite.models.metrics`.
"""
import keras
import tensorflow as tf

from t2t_lite import common_hparams
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.constants import PAD_ID, ModeKeys
from t2t_lite.errors import ConfigError, DataNotFoundError
from t2t_lite.models import losses
from t2t_lite.models import metrics as metrics_lib
from t2t_lite.utils import moving_average

# The length of the dummy sequences a model is built on when a dimension is unknown.
_BUILD_LENGTH = 4


class Task:
  """One training job: problem + model + hparams + data_dir (see the module docstring).

  Args:
    problem: a registered problem name or a Problem instance.
    model_name: a registered model name.
    hparams: the model HParams (an hparams set with its overrides applied).
    data_dir: where the problem's data (and vocabularies) are; may be None for a problem
      whose encoders need no files (decoding typed input).
    random_seed: seeds the order of the data (None: tf.data's own order in training).

  Raises:
    UnknownNameError: an unknown problem or model name.
  """

  def __init__(self, problem, model_name, hparams, data_dir, random_seed=None):
    self.problem = registry.problem(problem) if isinstance(problem, str) else problem
    self.model_name = model_name
    self.model_class = registry.model(model_name)
    self.hparams = hparams
    self.data_dir = data_dir
    self.random_seed = random_seed
    self.problem_hparams = self.problem.get_hparams(hparams, data_dir=data_dir)

  def __repr__(self):
    return "<Task %s %s>" % (self.problem.name, self.model_name)

  @property
  def sequence_targets(self):
    """False for class-label targets (one label an example), True for sequences."""
    return self.problem_hparams.modality.get("targets") != "class_label"

  # -- data --------------------------------------------------------------------------------------

  def dataset(self, mode, input_context=None, shuffle=None):
    """The batched dataset of `mode` (a ModeKeys value) for one input pipeline."""
    return self.problem.dataset(mode, self.data_dir, self.hparams, shuffle=shuffle,
                                seed=self.random_seed, input_context=input_context)

  def feature_spec(self):
    """{name: tf.TensorSpec} of a batch: the training dataset's when the data is there, else
    int32 sequences [batch, length] of the features the problem has."""
    try:
      return dict(self.dataset(ModeKeys.TRAIN).element_spec)
    except DataNotFoundError:
      pass
    targets_shape = [None, None] if self.sequence_targets else [None]
    spec = {"targets": tf.TensorSpec(targets_shape, tf.int32)}
    if self.problem_hparams.has_inputs:
      spec["inputs"] = tf.TensorSpec([None, None], tf.int32)
    return spec

  def vocab_fingerprint(self):
    """The vocabulary's fingerprint (`output_dir.vocab_fingerprint`): its files (a problem's
    `vocab_files(data_dir)`, when it has that method) and the vocab sizes."""
    vocab_files = getattr(self.problem, "vocab_files", None)
    files = vocab_files(self.data_dir) if callable(vocab_files) else []
    return output_dir_lib.vocab_fingerprint(
        [f for f in files if tf.io.gfile.exists(f)], self.problem_hparams.vocab_size)

  # -- the model ---------------------------------------------------------------------------------

  def build_model(self, inference=False):
    """The registered model, built: its weights exist (created from `feature_spec`), so an
    optimizer can be built and a checkpoint restored before the first step.

    The layers take the dtype policy `hparams.mixed_precision` (when set; "auto" resolved by
    `common_hparams.dtype_policy`, for decoding with `inference`); Keras's global policy is
    left as it was. Call it inside a tf.distribute strategy's scope to mirror the weights.
    """
    value = common_hparams.get(self.hparams, "mixed_precision")
    policy = common_hparams.dtype_policy(value, inference=inference)
    hparams = self.hparams
    if value == "auto":  # the model is given the policy "auto" resolved to here
      hparams = hparams.copy()
      hparams.mixed_precision = policy or ""
    previous = keras.config.dtype_policy()
    if policy:
      keras.config.set_dtype_policy(policy)
    try:
      model = self.model_class(hparams, self.problem_hparams)
      dummy = {}
      for name, spec in self.feature_spec().items():
        shape = [1] + [d if d is not None else _BUILD_LENGTH for d in spec.shape[1:]]
        dummy[name] = tf.ones(shape, spec.dtype)
      model(dummy, training=False)
    finally:
      keras.config.set_dtype_policy(previous)
    return model

  def restore_for_inference(self, output_dir, checkpoint_path=None):
    """Builds the model and restores its weights (only the model) from a checkpoint.

    Args:
      output_dir: the trained run.
      checkpoint_path: the checkpoint to read (default: the newest in output_dir that
        restores; newer ones that do not are skipped with a warning, never moved or deleted).

    Returns:
      (model, checkpoint path).

    Raises:
      CheckpointNotFoundError: output_dir has no checkpoint.
      CheckpointUnreadableError: none of its checkpoints restores.
      ConfigError: the checkpoint does not fit the model built from these hparams.
    """
    output_dir_lib.check_vocab(output_dir, self.vocab_fingerprint(), self.data_dir)
    candidates = ([checkpoint_path] if checkpoint_path else
                  output_dir_lib.checkpoint_paths(output_dir))
    if not candidates:
      output_dir_lib.latest_checkpoint(output_dir)  # raises CheckpointNotFoundError
    model = self.build_model(inference=True)
    checkpoint = tf.train.Checkpoint(model=model)
    unsaved = variables_outside_checkpoint(checkpoint, model)
    if unsaved:
      # A bug of the model, not of the user: its checkpoints cannot hold these variables, so
      # "restoring" would leave them at their random initial values.
      raise RuntimeError(
          "model %s keeps %d of its %d variables where tf.train.Checkpoint cannot see them "
          "(e.g. %s), so its checkpoints do not hold them and a restored model would run "
          "with random weights. Keras 3 does not checkpoint layers held only in a Python "
          "list attribute: give each such layer its own attribute as well." %
          (self.model_name, len(unsaved), len(model.weights), ", ".join(unsaved[:3])))

    def restore(path):
      try:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
      except (AssertionError, ValueError) as e:  # it reads, but holds another model
        raise ConfigError(
            "the checkpoint %s does not fit model %s with these hparams (%s). Use the model, "
            "problem and hparams it was trained with." %
            (path, self.model_name, str(e).splitlines()[0][:300])) from None

    path = output_dir_lib.restore_newest_good(output_dir, restore, move_aside=False,
                                              paths=candidates)
    # A run trained with hparams.ema_momentum is evaluated with its moving average: infer
    # with it too (a checkpoint without the optimizer, averaged or best/, holds the weights).
    moving_average.load_ema_weights(self.hparams, model, path)
    return model, path

  # -- loss and metrics --------------------------------------------------------------------------

  def loss(self, features, outputs, model=None):
    """(loss_sum, weight_sum) of one batch, float32 (see the module docstring)."""
    problem_loss = getattr(self.problem, "loss", None)
    if callable(problem_loss):
      return problem_loss(outputs, features, self.problem_hparams, self.hparams)
    if model is not None and callable(getattr(model, "loss_sum", None)):
      return model.loss_sum(outputs, features)
    return losses.model_loss(outputs, features, self.problem_hparams, self.hparams)

  def metrics(self):
    """(device metric names, host metric names) computed in evaluation."""
    model_metrics = getattr(self.model_class, "eval_metrics", None)
    names = model_metrics() if callable(model_metrics) else self.problem.eval_metrics()
    return metrics_lib.metric_names_for(names, self.sequence_targets)

  # -- one replica's steps -----------------------------------------------------------------------

  def train_step(self, model, optimizer, features):
    """One replica's training step; returns (loss_sum, weight_sum, tokens) of its batch.

    The loss is divided by the weight summed over all replicas in sync (an all-reduce), so
    any number of replicas applies the same update as one replica with the global batch.
    """
    replica = tf.distribute.get_replica_context()
    with tf.GradientTape() as tape:
      outputs = model(features, training=True)
      loss_sum, weight_sum = self.loss(features, outputs, model)
      global_weight = replica.all_reduce(tf.distribute.ReduceOp.SUM, weight_sum)
      loss = loss_sum / tf.maximum(global_weight, 1.0)
      if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        loss = optimizer.scale_loss(loss)
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss_sum, weight_sum, count_tokens(features)

  def eval_step(self, model, features, with_predictions=False):
    """One replica's evaluation of a batch.

    Returns:
      (sums, extra): sums is {metric: (numerator, denominator)} including "loss"; extra holds
      the argmax "predictions" and the "targets" when `with_predictions` (for host metrics).
    """
    outputs = model(features, training=False)
    device_metrics, _ = self.metrics()
    sums = metrics_lib.batch_metric_sums(outputs, features["targets"], device_metrics)
    sums["loss"] = self.loss(features, outputs, model)
    extra = {}
    if with_predictions:
      extra = {"predictions": tf.argmax(outputs, -1, output_type=tf.int32),
               "targets": tf.cast(features["targets"], tf.int32)}
    return sums, extra


def count_tokens(features):
  """The non-padding tokens of a batch's sequence features (examples for other features)."""
  total = tf.constant(0.0)
  for key in ("inputs", "targets"):
    if key in features:
      x = features[key]
      if x.dtype.is_integer and x.shape.rank >= 2:
        total += tf.reduce_sum(tf.cast(tf.not_equal(x, PAD_ID), tf.float32))
      else:
        total += tf.cast(tf.shape(x)[0], tf.float32)
  return total


def variables_outside_checkpoint(checkpoint, model):
  """The paths of the model's weights that `checkpoint` (which holds the model) cannot reach.

  Keras 3 layers kept only in a list attribute are tracked by Keras (they are in
  `model.weights`) but not by tf.train.Checkpoint, so a checkpoint silently lacks them.
  """
  view = tf.train.TrackableView(checkpoint)
  reachable = {id(obj) for obj in view.descendants()}
  return [w.path for w in model.weights if id(w) not in reachable]
