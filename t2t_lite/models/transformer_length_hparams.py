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

  Each choice below was kept by an ablation on algorithmic_reverse_binary40 (1500 steps, seed
  1, 50 greedy decodes a length; `python -m benchmarks.length` prints the current table,
  BENCHMARKS.md "length"); the figure is the exact-match fraction at 400 symbols without it.
  """
  hparams = transformer_hparams.transformer_tiny()
  # No absolute positions in the encoder or the decoder (`pos="none"`): sinusoidal positions
  # past 40 are unseen inputs, and T5's relative bias in the self-attentions lets the encoder
  # build position features of its own that stop working past the trained distances (0.10
  # with it, beside 0.92 without, at relative_max_distance 16).
  hparams.pos = "none"
  # Positions reach the decoder only through the attention over the inputs: a bias from the
  # decoder position against each input position counted from the input's start (copy reads
  # offset 0) and from its end (reversal reads offset 1), whatever the length.
  hparams.memory_pos = "relative"
  # Few, short buckets: offsets -3..3 exact, then 4-5, 6-7 and everything from 8 on. An input of
  # 400 then shows the decoder the same buckets as one of 40 (with 32 buckets up to 32, the
  # model also learnt coarse "how far along" features that fail past 40: 0.00).
  hparams.relative_num_buckets = 16
  hparams.relative_max_distance = 8
  # The bias is 10x its table, so that it grows to a sharp pointer at Adam's ~1e-3 steps.
  hparams.relative_bias_scale = 10.0
  # The attention over the inputs has its logits times log(n) / log(41), n the inputs attended
  # (scalable softmax): a pointer as sharp over 401 inputs as over the 41 trained on (0.00 at
  # 400 without it at 32 buckets, 0.54 at 60 with it). On that attention only: on the
  # self-attentions, whose logits are content alone, the same scaling shifts their mixtures
  # with the length (0.00 at 400 on seed 2, beside 1.00 without it there).
  hparams.memory_length_scale = 41.0
  return hparams
