"""Tests for t2t_lite.flags: definitions and defaults, --hp_ args, create/save/check hparams."""
import json
import logging
import os

import pytest
from absl import flags as absl_flags
from absl.testing import flagsaver

from t2t_lite import common_hparams
from t2t_lite import flags as t2t_flags
from t2t_lite import output_dir as output_dir_lib
from t2t_lite import registry
from t2t_lite.errors import ConfigError, HParamsError, UnknownNameError
from t2t_lite.hparams import HParams

FLAGS = absl_flags.FLAGS


def parse(*args):
  """Parses FLAGS from an explicit argv; returns what absl left unparsed (without argv[0])."""
  return FLAGS(["prog"] + list(args), known_only=True)[1:]


@pytest.fixture
def saved_flags():
  """FLAGS restored after the test, parsed or not as before."""
  was_parsed = FLAGS.is_parsed()
  with flagsaver.flagsaver():
    yield
  if not was_parsed:
    FLAGS.unparse_flags()


@pytest.fixture
def tiny_set():
  @registry.register_hparams("flags_test_tiny")
  def flags_test_tiny():
    return HParams(batch_size=8, dropout=0.1, optimizer="adam")

  yield "flags_test_tiny"
  registry.unregister("hparams", "flags_test_tiny")


def test_flags_are_defined_with_the_documented_defaults():
  expected = {
      "problem": None, "model": None, "hparams_set": None, "hparams": "", "data_dir": None,
      "output_dir": None, "train_steps": 2000, "eval_steps": 100,
      "local_eval_frequency": 1000, "schedule": "continuous_train_and_eval",
      "t2t_usr_dir": None, "registry_help": False, "generate_data": False,
      "random_seed": t2t_flags.DEFAULT_RANDOM_SEED, "keep_checkpoint_max": 20,
      "use_tpu": False, "tpu": None, "worker_gpu": None, "distribution_strategy": "auto",
      "decode_from_file": None, "decode_to_file": None, "decode_hparams": "",
      "export_saved_model": False, "save_checkpoints_steps": None,
      "log_step_count_steps": 100, "overwrite_output_hparams": False, "overwrite": False,
      "decode_interactive": False,
  }
  for name, default in expected.items():
    assert name in FLAGS, name
    assert FLAGS[name].default == default, name
  assert FLAGS["tmp_dir"].default.endswith("t2t_datagen")
  for name in ("train_steps", "random_seed", "worker_gpu", "distribution_strategy"):
    assert "`--%s`" % name in t2t_flags.__doc__  # the defaults table
  assert "Flags whose default differs from tensor2tensor, and why" in t2t_flags.__doc__


def test_importing_again_does_not_redefine(saved_flags):
  import importlib
  importlib.reload(t2t_flags)  # would raise DuplicateFlagError if it defined again
  assert "problem" in FLAGS


def test_parse_explicit_argv(saved_flags):
  rest = parse("--problem=p", "--model", "m", "--train_steps=7", "--use_tpu",
               "--distribution_strategy=mirrored", "--hp_x=1")
  assert FLAGS.problem == "p" and FLAGS.model == "m" and FLAGS.train_steps == 7
  assert FLAGS.use_tpu and FLAGS.distribution_strategy == "mirrored"
  assert rest == ["--hp_x=1"]


def test_distribution_strategy_is_an_enum(saved_flags):
  with pytest.raises(absl_flags.IllegalFlagValueError):
    parse("--distribution_strategy=sideways")


def test_t2t_usr_dir_is_repeatable(saved_flags):
  parse("--t2t_usr_dir=a,b", "--t2t_usr_dir", "c")
  assert FLAGS.t2t_usr_dir == ["a,b", "c"]


def test_set_hparams_from_args_both_forms_and_appends(saved_flags):
  rest = parse("--hparams=batch_size=4", "--hp_dropout", "0.3", "--hp_optimizer=sgd",
               "--hp_layers=[1,2]")
  t2t_flags.set_hparams_from_args(rest)
  assert FLAGS.hparams == "batch_size=4,dropout=0.3,optimizer=sgd,layers=[1,2]"


def test_set_hparams_from_args_with_empty_hparams(saved_flags):
  parse()
  t2t_flags.set_hparams_from_args(["--hp_a=1", "-hp_b", "-2"])
  assert FLAGS.hparams == "a=1,b=-2"
  t2t_flags.set_hparams_from_args([])
  assert FLAGS.hparams == "a=1,b=-2"


def test_set_hparams_from_args_handles_a_trailing_comma(saved_flags):
  parse("--hparams=a=1,")
  t2t_flags.set_hparams_from_args(["--hp_b=2"])
  assert FLAGS.hparams == "a=1,b=2"


def test_set_hparams_from_args_warns_about_other_arguments(saved_flags, caplog):
  parse()
  with caplog.at_level(logging.WARNING):
    t2t_flags.set_hparams_from_args(["--not_a_flag=3", "--hp_a=1", "stray"])
  assert FLAGS.hparams == "a=1"
  text = caplog.text
  assert "--not_a_flag=3" in text and "stray" in text


@pytest.mark.parametrize("args", [["--hp_a"], ["--hp_a", "--other"], ["--hp_=3"]])
def test_set_hparams_from_args_errors(saved_flags, args):
  parse()
  with pytest.raises(HParamsError):
    t2t_flags.set_hparams_from_args(args)


def test_hp_args_then_create_hparams(saved_flags, tiny_set):
  t2t_flags.set_hparams_from_args(parse("--hparams=batch_size=16", "--hp_dropout", "0.5"))
  hp = t2t_flags.create_hparams(tiny_set, FLAGS.hparams)
  assert hp.batch_size == 16 and hp.dropout == 0.5


def test_hp_arg_repeating_an_hparams_name_is_an_error(saved_flags, tiny_set):
  t2t_flags.set_hparams_from_args(parse("--hparams=batch_size=16", "--hp_batch_size=4"))
  with pytest.raises(HParamsError, match="set twice"):
    t2t_flags.create_hparams(tiny_set, FLAGS.hparams)


def test_the_trainer_defaults_are_the_flags_defaults():
  import inspect  # pylint: disable=g-import-not-at-top
  from t2t_lite.training.trainer import Trainer  # pylint: disable=g-import-not-at-top
  init = inspect.signature(Trainer.__init__).parameters
  run = inspect.signature(Trainer.run).parameters
  for flag, default in [("keep_checkpoint_max", init["keep_checkpoint_max"]),
                        ("log_step_count_steps", init["log_step_count_steps"]),
                        ("local_eval_frequency", init["save_checkpoints_steps"]),
                        ("eval_steps", run["eval_steps"]), ("schedule", run["schedule"])]:
    assert FLAGS[flag].default == default.default, flag


def test_create_hparams_is_common_hparams_own():
  assert t2t_flags.create_hparams is common_hparams.create_hparams


def test_create_hparams_records_set_and_problem(tiny_set):
  hp = t2t_flags.create_hparams(tiny_set, "batch_size=32, optimizer='adafactor'",
                                problem_name="some_problem")
  assert hp.batch_size == 32 and hp.optimizer == "adafactor"
  assert hp.hparams_set == tiny_set and hp.problem_name == "some_problem"
  plain = t2t_flags.create_hparams(tiny_set)
  assert plain.batch_size == 8 and "problem_name" not in plain


def test_create_hparams_errors(tiny_set):
  with pytest.raises(UnknownNameError, match="did you mean 'flags_test_tiny'"):
    t2t_flags.create_hparams("flags_test_tin")
  with pytest.raises(HParamsError, match="batch_size"):
    t2t_flags.create_hparams(tiny_set, "batch_size=1.5")
  with pytest.raises(HParamsError, match="hparams_set"):
    t2t_flags.create_hparams(tiny_set, "hparams_set=other")  # not settable by overrides
  with pytest.raises(ConfigError, match="--hparams_set is required"):
    t2t_flags.create_hparams(None)


def test_save_then_check(tmp_path):
  out = str(tmp_path / "run")
  hp = HParams(batch_size=8, dropout=0.1, layers=[1, 2], name="x")
  assert output_dir_lib.save_or_check_hparams(out, hp, flags_text="--problem=p\n") is hp
  saved = json.loads((tmp_path / "run" / "hparams.json").read_text())
  assert saved == hp.values()
  assert (tmp_path / "run" / "flags.txt").read_text() == "--problem=p\n"
  assert [p for p in os.listdir(out) if "tmp" in p] == []  # no temporary files left
  # The same hparams again: fine, and flags.txt shows the latest command.
  same = HParams(batch_size=8, dropout=0.1, layers=[1, 2], name="x")
  assert output_dir_lib.save_or_check_hparams(out, same, flags_text="--problem=p2\n") is same
  assert (tmp_path / "run" / "flags.txt").read_text() == "--problem=p2\n"


def test_check_names_every_difference_and_the_flag(tmp_path):
  out = str(tmp_path)
  output_dir_lib.save_or_check_hparams(out, HParams(batch_size=8, dropout=0.1, old=1),
                                  flags_text="")
  new = HParams(batch_size=16, dropout=0.1, new="y")
  with pytest.raises(ConfigError) as info:
    output_dir_lib.save_or_check_hparams(out, new, flags_text="")
  message = str(info.value)
  assert "batch_size: saved 8, new 16" in message
  assert "old: saved 1, new (absent)" in message
  assert "new: saved (absent), new 'y'" in message
  assert "dropout" not in message
  assert "--overwrite_output_hparams" in message
  assert "\n" not in message
  # Nothing was overwritten.
  assert json.loads((tmp_path / "hparams.json").read_text())["batch_size"] == 8


def test_check_tells_int_from_float(tmp_path):
  output_dir_lib.save_or_check_hparams(str(tmp_path), HParams(lr=1.0), flags_text="")
  with pytest.raises(ConfigError, match="lr: saved 1.0, new 1"):
    output_dir_lib.save_or_check_hparams(str(tmp_path), HParams(lr=1), flags_text="")


def test_overwrite_takes_the_new_values(tmp_path):
  out = str(tmp_path / "run")
  output_dir_lib.save_or_check_hparams(out, HParams(batch_size=8), flags_text="")
  new = HParams(batch_size=16)
  assert output_dir_lib.save_or_check_hparams(out, new, flags_text="", overwrite=True) is new
  assert json.loads((tmp_path / "run" / "hparams.json").read_text()) == {"batch_size": 16}
  assert output_dir_lib.save_or_check_hparams(out, HParams(batch_size=16), flags_text="")


def test_corrupt_saved_hparams_is_a_config_error(tmp_path):
  (tmp_path / "hparams.json").write_text("{not json")
  with pytest.raises(ConfigError, match="hparams.json is not a valid hparams file.*"
                     "--overwrite_output_hparams"):
    output_dir_lib.save_or_check_hparams(str(tmp_path), HParams(a=1), flags_text="")
  output_dir_lib.save_or_check_hparams(str(tmp_path), HParams(a=1), flags_text="", overwrite=True)
  assert json.loads((tmp_path / "hparams.json").read_text()) == {"a": 1}


def test_flags_text_defaults_to_the_parsed_flags(saved_flags, tmp_path):
  parse("--problem=from_flags")
  output_dir_lib.save_or_check_hparams(str(tmp_path), HParams(a=1), t2t_flags.flags_text())
  assert "--problem=from_flags" in (tmp_path / "flags.txt").read_text()


def test_created_hparams_round_trip_through_the_output_dir(tiny_set, tmp_path):
  hp = t2t_flags.create_hparams(tiny_set, "dropout=0.2", problem_name="p")
  output_dir_lib.save_or_check_hparams(str(tmp_path), hp, flags_text="")
  again = t2t_flags.create_hparams(tiny_set, "dropout=0.2", problem_name="p")
  output_dir_lib.save_or_check_hparams(str(tmp_path), again, flags_text="")
  other_problem = t2t_flags.create_hparams(tiny_set, "dropout=0.2", problem_name="q")
  with pytest.raises(ConfigError, match="problem_name: saved 'p', new 'q'"):
    output_dir_lib.save_or_check_hparams(str(tmp_path), other_problem, flags_text="")
