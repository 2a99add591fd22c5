"""The transformer's hparams sets: tensor2tensor's transformer_base, _big, _small, _tiny, _tpu.

Each registered function returns a new HParams; `transformer_common` is the shared starting
point (basic_params1 plus the transformer's own hparams), also used by transformer_encoder's
sets. The model reads them in `t2t_lite.models.transformer`, which imports this module, so the
sets are registered whenever the model is.
"""
from t2t_lite import registry
from t2t_lite.common_hparams import basic_params1


def transformer_common():
  """The transformer hparams every set starts from (not registered; see transformer_base)."""
  hparams = basic_params1()
  hparams.add_hparam("filter_size", 2048)
  hparams.add_hparam("num_heads", 8)
  hparams.add_hparam("num_encoder_layers", 0)  # 0: num_hidden_layers
  hparams.add_hparam("num_decoder_layers", 0)  # 0: num_hidden_layers
  hparams.add_hparam("layer_prepostprocess_dropout", 0.1)
  hparams.add_hparam("attention_dropout", 0.1)
  hparams.add_hparam("relu_dropout", 0.1)
  hparams.add_hparam("ffn_activation", "relu")
  hparams.add_hparam("norm_epsilon", 1e-6)
  # Positions: timing (sinusoidal) | emb (learned) | none | random (sinusoidal at a sorted
  # random subset of [0, pos_random_range) in training) | relative (T5's bucketed bias in the
  # self-attentions, relative_num_buckets up to relative_max_distance).
  hparams.add_hparam("pos", "timing")
  hparams.add_hparam("pos_random_range", 1024)
  hparams.add_hparam("relative_num_buckets", 32)
  hparams.add_hparam("relative_max_distance", 128)
  hparams.add_hparam("relative_bias_scale", 1.0)  # the biases are this times their tables
  # "relative": the attention over the inputs reads the decoder position against each input
  # position counted from the input's start and from its end (t2t_lite.layers.positions).
  hparams.add_hparam("memory_pos", "none")
  # 0, or L: the attention over the inputs has its logits times log(n) / log(L), n the
  # inputs a query attends to.
  hparams.add_hparam("memory_length_scale", 0.0)
  # Heads of the attention over the inputs whose logits are memory_pos's bias alone.
  hparams.add_hparam("memory_position_heads", 0)
  hparams.add_hparam("shared_embedding", False)  # one embedding for inputs and targets
  # tensor2tensor's names and defaults: pre-norm ("n" before each sublayer; dropout and
  # residual after it); ""/"dan" is post-norm (transformer_base_v1's).
  hparams.add_hparam("layer_preprocess_sequence", "n")
  hparams.add_hparam("layer_postprocess_sequence", "da")
  # Embeddings times sqrt(hidden_size) ("sqrt_depth", tensor2tensor's) or not ("none").
  hparams.add_hparam("multiply_embedding_mode", "sqrt_depth")
  # Dense kernels: "fan_in_uniform" (t2t_lite's Dense default), "uniform_unit_scaling"
  # (tensor2tensor's, scaled by initializer_gain) or a Keras initializer name.
  hparams.add_hparam("initializer", "fan_in_uniform")
  hparams.add_hparam("initializer_gain", 1.0)
  # No biases in the attention projections (Q, K, V and the output), as tensor2tensor's
  # multihead_attention; the feed-forward layers keep theirs. They cost a BiasAdd and its
  # gradient per projection, and transformer_tiny learns no slower without them.
  # Runs saved before this hparam existed read True (their checkpoints hold the biases).
  hparams.add_hparam("attention_use_bias", False)
  return hparams


@registry.register_hparams
def transformer_base():
  """tensor2tensor's transformer_base (= transformer_base_v3): 6 layers, 512 wide, 8 heads.

  Train it (WMT English-German, 8 GPUs or a TPU for the paper's numbers):

      t2t-trainer --problem=translate_ende_wmt32k --model=transformer \\
          --hparams_set=transformer_base --train_steps=250000 \\
          --data_dir=~/t2t_data --output_dir=~/t2t_train/ende_base

  Result on this machine: not measured; WMT data and days of accelerator time are beyond a
  2-core CPU machine with no downloads.
  """
  hparams = transformer_common()
  hparams.batch_size = 4096  # tokens per replica
  hparams.max_length = 256
  hparams.hidden_size = 512
  hparams.num_hidden_layers = 6
  hparams.filter_size = 2048
  hparams.num_heads = 8
  hparams.dropout = 0.1  # unused by the transformer itself (basic_params1's generic rate)
  hparams.label_smoothing = 0.1
  hparams.shared_embedding_and_softmax_weights = True
  hparams.optimizer = "adam"
  hparams.optimizer_adam_beta1 = 0.9
  hparams.optimizer_adam_beta2 = 0.997
  hparams.optimizer_adam_epsilon = 1e-9
  hparams.clip_grad_norm = 0.0
  hparams.weight_decay = 0.0
  # constant * min(1, step / warmup) * rsqrt(max(step, warmup)) * rsqrt(hidden_size): the
  # schedule tensor2tensor spells "constant*linear_warmup*rsqrt_decay*rsqrt_hidden_size".
  hparams.learning_rate_schedule = "noam"
  hparams.learning_rate_constant = 2.0
  # 4000 warmup steps: the paper's value and transformer_base_v1's. (Deviation:
  # tensor2tensor's transformer_base_v2/v3 use 8000, which peaks at a rate sqrt(2) lower,
  # later; --hparams=learning_rate_warmup_steps=8000 gives v3 exactly.)
  hparams.learning_rate_warmup_steps = 4000
  return hparams


@registry.register_hparams
def transformer_big():
  """tensor2tensor's transformer_big: 1024 wide, 4096 filter, 16 heads, dropout 0.3.

  Train it:

      t2t-trainer --problem=translate_ende_wmt32k --model=transformer \\
          --hparams_set=transformer_big --train_steps=300000 \\
          --data_dir=~/t2t_data --output_dir=~/t2t_train/ende_big

  Result on this machine: not measured (WMT data and accelerators needed; see transformer_base).
  """
  hparams = transformer_base()
  hparams.hidden_size = 1024
  hparams.filter_size = 4096
  # tensor2tensor halves the token batch so that the model fits a 12 GB GPU.
  hparams.batch_size = 2048
  hparams.num_heads = 16
  hparams.layer_prepostprocess_dropout = 0.3
  return hparams


@registry.register_hparams
def transformer_small():
  """tensor2tensor's transformer_small: 2 layers, 256 wide, 1024 filter, 4 heads.

  Train it:

      t2t-trainer --problem=translate_ende_wmt8k --model=transformer \\
          --hparams_set=transformer_small --train_steps=100000 \\
          --data_dir=~/t2t_data --output_dir=~/t2t_train/ende_small

  Result on this machine: not trained to a result here; benchmarks/train.py measures its
  training speed on algorithmic_reverse_binary40 (tokens/s, MFU: see BENCHMARKS.md).
  """
  hparams = transformer_base()
  hparams.num_hidden_layers = 2
  hparams.hidden_size = 256
  hparams.filter_size = 1024
  hparams.num_heads = 4
  return hparams


@registry.register_hparams
def transformer_tiny():
  """tensor2tensor's transformer_tiny (2 layers, 128 wide, 512 filter, 4 heads), with
  training defaults for the algorithmic problems on a CPU (see _tiny_training_defaults).

  Train it (the README's first command, `bash scripts/quickstart.sh demo`, runs this):

      t2t-trainer --generate_data --problem=algorithmic_reverse_binary40 \\
          --model=transformer --hparams_set=transformer_tiny --train_steps=1000 \\
          --local_eval_frequency=1000 --eval_steps=-1 --data_dir=~/t2t_data \\
          --output_dir=~/t2t_train/reverse_binary40

  Result on this machine (2 CPU cores with AVX512-BF16, 2026-12-05): `bash
  scripts/quickstart.sh demo` reaches 0.9999 per-token and 0.9968 per-sequence accuracy on the
  whole dev split 59 s after launch, data generation included.
  Speed against keras-hub's encoder-decoder of the same sizes, trained to 0.99 per token as
  a Keras user would: `python -m benchmarks.peer` (BENCHMARKS.md "peer", medians over seeds
  no setting was chosen on). Earlier runs: docs/HISTORY.md.
  """
  hparams = transformer_base()
  hparams.num_hidden_layers = 2
  hparams.hidden_size = 128
  hparams.filter_size = 512
  hparams.num_heads = 4
  _tiny_training_defaults(hparams)
  return hparams


def _tiny_training_defaults(hparams):
  """transformer_tiny's deviations from tensor2tensor, each with its reason.

  Chosen by per-token accuracy on algorithmic_reverse_binary40 at step 1000, with
  `python -m benchmarks.peer_steps` (the Trainer t2t-trainer runs; steps rather than seconds,
  which contention on a shared machine changes), on seeds 1-3 and later 21-25. Each setting
  below says why it helps; the runs that compared it with the alternatives are in
  docs/HISTORY.md. Together they reach 0.99 by step 1000 on every seed tried, where batches
  bucketed by length (tensor2tensor's) needed 5000-5500 steps.
  """
  # Packed rows (t2t_lite.data.packing) of 64 tokens, 12 rows a batch (768 tokens; ~36
  # examples of mixed lengths), instead of 4096 tokens bucketed by length: a batch of many
  # sequences of mixed lengths learns in fewer steps than one of a single length, and packed
  # rows waste little compute on padding. Training drops examples longer than a row (64 tokens);
  # evaluation reads them all. 12 rows rather than 8 or 10: with fewer, some seeds read below
  # 0.99 at step 1000; a bigger step, repaid by the shorter run (docs/HISTORY.md, "Accuracy at
  # step 1000 on seeds 21-25").
  hparams.packed_length = 64
  hparams.batch_size = 768
  # bfloat16 compute (float32 weights) where the hardware computes it natively (e.g.
  # AVX512-BF16; `common_hparams.dtype_policy`), float32 elsewhere; no XLA. bfloat16 without
  # XLA had the fastest step and learns as fast per step as float32; XLA's compilation costs
  # seconds at the start of a run that lasts about a minute.
  hparams.mixed_precision = "auto"
  hparams.xla_compile = False
  # No label smoothing (tensor2tensor's 0.1, basic_params1's): it did not make these problems
  # learn faster per step, and with it a trained model's loss and
  # neg_log_perplexity cannot approach 0 (a perfect model scores about -0.106 at 0.1, which
  # reads as a bug beside accuracy 1.0); with 0.0 they are the model's real log-likelihood.
  hparams.label_smoothing = 0.0
  # Warmup, stable, decay (optimizers.WarmupStableDecay): 200 warmup steps to 0.0015, held,
  # then a linear decay over the last fifth of the run, instead of noam with 4000
  # (tensor2tensor's v3: 8000) warmup steps: thousands of warmup steps alone are longer than a
  # CPU run, and these problems learn only while the rate stays high; a cosine over the run
  # lowers it from the warmup on, and a 1000-step demo ended below 0.99 with one. Gradients
  # clipped to a global norm of 1 hold the rate at 0.0015, where without clipping 0.0015 and
  # 0.002 fell behind 0.001 on some seeds (docs/HISTORY.md).
  hparams.learning_rate_schedule = "wsd"
  hparams.learning_rate_constant = 0.0015
  hparams.learning_rate_warmup_steps = 200
  hparams.clip_grad_norm = 1.0
  # No dropout: 100k generated examples cannot be overfit in a run of a few thousand steps,
  # so dropout only adds noise to the position-matching attention these problems need.
  hparams.layer_prepostprocess_dropout = 0.0
  hparams.attention_dropout = 0.0
  hparams.relu_dropout = 0.0
  # Evaluate, decode and export the exponential moving average of the weights (keras's
  # use_ema; momentum 0.97 averages about the last 33 steps), not the weights themselves:
  # at the high rate these problems need, the weights keep jumping around the
  # solution and their average sits nearer to it, so it reaches 0.99 in fewer steps. 0.97
  # rather than 0.98 or 0.99: a longer average still holds the early, worse weights at step
  # 1000. Training itself is unchanged; keeping the average costs nothing measurable a step.
  hparams.ema_momentum = 0.97
  # Adam's beta2 0.98 (tensor2tensor's transformer_base_v1 value; v2's, which transformer_base
  # keeps, is 0.997): the second-moment estimate forgets in ~50 steps instead of ~330, which
  # steadies the steps at this high rate (higher accuracy at step 1000 on seeds 1-3).
  hparams.optimizer_adam_beta2 = 0.98
  return hparams


@registry.register_hparams
def transformer_tpu():
  """transformer_base with tensor2tensor's TPU settings (update_hparams_for_tpu).

  Train it on a Cloud TPU:

      t2t-trainer --problem=translate_ende_wmt32k_packed --model=transformer \\
          --hparams_set=transformer_tpu --train_steps=250000 --use_tpu \\
          --data_dir=gs://BUCKET/t2t_data --output_dir=gs://BUCKET/t2t_train/ende_tpu

  Result on this machine: not measured; it needs a TPU (--use_tpu), which this machine has not.
  """
  hparams = transformer_base()
  hparams.optimizer = "adafactor"  # less memory than Adam
  # tensor2tensor switches to its "rsqrt_decay" schedule: 2.0 * rsqrt(max(step, 10000)),
  # with no hidden-size factor. The trainer here knows noam, constant and cosine; noam with
  # constant 2.0 * sqrt(hidden_size) is the same rate after warmup and ramps up linearly to
  # it during warmup instead of starting at the peak. (Deviation: the warmup ramp.)
  hparams.learning_rate_schedule = "noam"
  hparams.learning_rate_constant = 2.0 * 512 ** 0.5
  hparams.learning_rate_warmup_steps = 10000
  # Every batch has the same shape on a TPU: examples longer than max_length are dropped and
  # shorter ones padded to it.
  hparams.fixed_batch_shapes = True
  hparams.max_length = 64
  hparams.batch_size = 2048
  # tensor2tensor's transformer_tpu keeps float32 activations (bfloat16 is
  # transformer_tpu_bf16_activation); bfloat16 compute is what TPUs are built for and Keras's
  # mixed_bfloat16 keeps the weights in float32. (Deviation.)
  hparams.mixed_precision = "mixed_bfloat16"
  return hparams


@registry.register_hparams
def transformer_translate_cpu():
  """Translation trained on a CPU in minutes: transformer_small (2 layers, 256 wide, 1024
  filter, 4 heads) with a batch, a warmup and a moving average sized for a run of a few
  thousand steps, bfloat16 compute where the CPU has it (README's "Translate" recipe).

      t2t-datagen --problem=text2text_tmpdir --tmp_dir=~/ende --data_dir=~/t2t_data/ende
      t2t-trainer --problem=text2text_tmpdir --model=transformer \\
          --hparams_set=transformer_translate_cpu --schedule=train --train_steps=2850 \\
          --data_dir=~/t2t_data/ende --output_dir=~/t2t_train/ende_cpu

  `python -m benchmarks.translate` runs that recipe for 20 minutes of training beside a
  keras-hub pipeline of the same size: sacreBLEU 18.44 against 13.63 on 1000 held-out test
  sentences, 2 cores, 2026-12-04 (BENCHMARKS.md, "translate").

  What it changes from transformer_small, and why (the gettext corpus, 2 cores):
  - batch_size 2048 tokens (small: 4096): a budget of minutes is better spent on more,
    smaller steps.
  - max_length 128, so packed rows of 128 tokens: sentences are short (15 pieces on average)
    and attention over a row costs its length.
  - warmup 400 steps at learning_rate_constant 1.0 (peak 0.003 at hidden 256), not 4000 at
    2.0: a run of a few thousand steps cannot spend 4000 warming up.
  - Adam's beta2 0.98 (transformer_base_v1's): the second moments follow the fast-changing
    gradients of a short, high-rate run.
  - ema_momentum 0.995: decoding, evaluation and export read a moving average of the last
    ~200 steps' weights, which the noisy weights of a short run at a high rate sit around.
  - mixed_precision auto: bfloat16 compute where the CPU computes it natively (AVX512-BF16,
    AMX), float32 elsewhere. Without XLA: with bfloat16 XLA's step is slower; a CPU without
    bfloat16 trains faster with `--hparams=xla_compile=true` (real target tokens/s on the
    gettext corpus, 2 cores, 2026-12-04: bfloat16 4618, bfloat16 with XLA 3688, float32 3167,
    float32 with XLA 3650).
  Kept from transformer_base: dropout 0.1, label smoothing 0.1, shared embeddings and softmax,
  the noam schedule (its decay needs no train_steps, so a run can be stopped at any time:
  SIGTERM saves a checkpoint and exits).
  """
  hparams = transformer_small()
  hparams.batch_size = 2048
  hparams.max_length = 128
  hparams.learning_rate_warmup_steps = 400
  hparams.learning_rate_constant = 1.0
  hparams.optimizer_adam_beta2 = 0.98
  hparams.ema_momentum = 0.995
  hparams.mixed_precision = "auto"
  return hparams
