"""transformer_tiny_length: transformer_tiny that decodes inputs longer than it trained on.

Registered with the model (t2t_lite.models.transformer imports this module).
"""
from t2t_lite import registry
from t2t_lite.models import transformer_hparams


@registry.register_hparams
def transformer_tiny_length():
  """transformer_tiny with positions that hold far past the training lengths.

  Train it on lengths 1-40 and decode inputs of up to 400 (README "Longer than trained"):

      t2t-trainer --generate_data --problem=algorithmic_reverse_binary40 \\
          --model=transformer --hparams_set=transformer_tiny_length --train_steps=3000 \\
          --data_dir=~/t2t_data --output_dir=~/t2t_train/reverse_length

  Each choice below is justified by a row of `python -m benchmarks.length` (BENCHMARKS.md
  "length": reversal, 3000 steps, seed 1, 200 greedy decodes a length): the figure is the
  exact-match fraction without that choice, at 400 symbols unless said. With all of them,
  1.00 at every length from 1 to 400, for reversal and for identity.
  """
  hparams = transformer_hparams.transformer_tiny()
  # The training every figure below was measured with: transformer_tiny's of 2026-12-05, 8
  # packed rows of 64 tokens a batch and a cosine decay over the whole run (3000 steps).
  hparams.batch_size = 512
  hparams.learning_rate_schedule = "cosine"
  # No absolute positions (`pos="none"`): sinusoidal positions past 40 are inputs the model
  # never saw (pos=timing: 0.19 at 200, 0.00), and randomized ones (pos=random, trained on
  # positions up to 1024) decode unevenly (0.12 at 200, 0.00). T5's bias in the
  # self-attentions (pos=relative) decodes as well here (1.00); none is kept as the simpler:
  # no weights, and no positions from which the encoder could build features of its own.
  hparams.pos = "none"
  # Positions reach the decoder through the attention over the inputs: a bias from the
  # decoder position against each input position counted from the input's start (copy reads
  # offset 0) and from its end (reversal reads offset 1), whatever the length. Without it
  # nothing tells positions apart (memory_pos=none: 0.05 even at lengths 1-40).
  hparams.memory_pos = "relative"
  # Few, short buckets: offsets -3..3 exact, then 4-5, 6-7 and everything from 8 on, so an
  # input of 400 shows the decoder the same buckets as one of 40 (32 buckets up to 32: 0.515
  # at 60, 0.00 from 120 on).
  hparams.relative_num_buckets = 16
  hparams.relative_max_distance = 8
  # The bias is 10x its table, so that it grows to a sharp pointer at Adam's ~1e-3 steps
  # (relative_bias_scale=1: BENCHMARKS.md's row).
  hparams.relative_bias_scale = 10.0
  # The attention over the inputs has its logits times log(n) / log(41), n the inputs
  # attended (scalable softmax): a pointer as sharp over 401 inputs as over the 41 trained on
  # (memory_length_scale=0: 0.925 at 120, 0.15 at 200, 0.00). On that attention only: the
  # self-attentions' logits are content alone, and scaling them shifts their mixtures with
  # the length (an exploration run, seed 2, 50 decodes a length: 0.00 at 400 with every
  # attention scaled, 1.00 with this one only).
  hparams.memory_length_scale = 41.0
  return hparams
