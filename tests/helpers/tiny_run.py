"""A tiny transformer trained a few steps into an output dir, as t2t-trainer leaves one: the
run that the decoder, averaging and vocabulary-check tests read back."""
from t2t_lite import output_dir as output_dir_lib
from t2t_lite.flags import create_hparams
from t2t_lite.training import Trainer

# transformer_tiny at test sizes; its training defaults (packing, schedule, moving average) stay.
TINY_SIZES = "hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=1"


def train_tiny_transformer(problem_name, data_dir, output_dir, train_steps,
                           save_checkpoints_steps, hparams="", flags_text="--model=transformer\n"):
  """Writes output_dir's hparams.json and flags.txt, then trains transformer_tiny at
  TINY_SIZES (and `hparams`, an --hparams string such as "batch_size=64") on the problem's
  data in data_dir with random_seed 1.

  Returns:
    (the HParams, the Trainer after its run).
  """
  hp = create_hparams("transformer_tiny", ",".join(filter(None, [TINY_SIZES, hparams])),
                      problem_name=problem_name)
  output_dir_lib.save_or_check_hparams(output_dir, hp, flags_text=flags_text)
  trainer = Trainer(problem_name, "transformer", hp, data_dir, output_dir,
                    train_steps=train_steps, save_checkpoints_steps=save_checkpoints_steps,
                    random_seed=1)
  trainer.run("train")
  return hp, trainer
