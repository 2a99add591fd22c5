"""Tests for t2t_lite.registry: names, look-ups, lists, clashes, unknown names, modifiers."""
import importlib.util
import sys

import pytest

from t2t_lite import registry
from t2t_lite.errors import RegistrationError, T2TUserError, UnknownNameError
from t2t_lite.hparams import HParams


@pytest.fixture(autouse=True)
def clean_registry():
  """Each test starts from the registry as it was and leaves it that way."""
  saved = [dict(r._items) for r in (registry._PROBLEMS, registry._MODELS, registry._HPARAMS)]
  yield
  for r, items in zip((registry._PROBLEMS, registry._MODELS, registry._HPARAMS), saved):
    r._items.clear()
    r._items.update(items)


class FakeProblem:
  """What registry.problem needs of a Problem: the modifier keyword arguments."""

  def __init__(self, was_reversed=False, was_copy=False):
    self.was_reversed = was_reversed
    self.was_copy = was_copy


@pytest.mark.parametrize("cls_name, expected", [
    ("AlgorithmicReverseBinary40", "algorithmic_reverse_binary40"),
    ("MyHTTPModel", "my_http_model"),
    ("TinyAlgo", "tiny_algo"),
    ("Transformer", "transformer"),
    ("already_snake", "already_snake"),
    ("LSTMSeq2seq", "lstm_seq2seq"),
])
def test_default_name(cls_name, expected):
  assert registry.default_name(cls_name) == expected
  assert registry.default_name(type(cls_name, (), {})) == expected


def test_register_problem_bare_uses_snake_case_and_returns_instances():
  registry.unregister("problem", "algorithmic_reverse_binary40")  # the built-in, if imported

  @registry.register_problem
  class AlgorithmicReverseBinary40(FakeProblem):
    pass

  assert "algorithmic_reverse_binary40" in registry.list_problems()
  p = registry.problem("algorithmic_reverse_binary40")
  assert isinstance(p, AlgorithmicReverseBinary40)
  assert (p.was_reversed, p.was_copy) == (False, False)
  assert registry.problem("algorithmic_reverse_binary40") is not p  # a new instance
  assert AlgorithmicReverseBinary40.REGISTERED_NAME == "algorithmic_reverse_binary40"


def test_register_with_explicit_name_positional_keyword_and_empty_call():
  @registry.register_model("custom_net")
  class MyHTTPModel:
    pass

  @registry.register_model(name="other_net")
  class Other:
    pass

  @registry.register_model()
  class TinyAlgo:
    pass

  assert registry.model("custom_net") is MyHTTPModel
  assert registry.model("other_net") is Other
  assert registry.model("tiny_algo") is TinyAlgo
  assert "my_http_model" not in registry.list_models()


def test_register_called_directly_with_name():
  class Direct:
    pass

  assert registry.register_model(Direct, name="direct_x") is Direct
  assert registry.model("direct_x") is Direct


def test_subclass_of_registered_class_gets_its_own_registered_name():
  @registry.register_problem
  class BaseTask(FakeProblem):
    pass

  @registry.register_problem
  class DerivedTask(BaseTask):
    pass

  assert BaseTask.REGISTERED_NAME == "base_task"
  assert DerivedTask.REGISTERED_NAME == "derived_task"


def test_hparams_returns_a_fresh_object_each_call():
  @registry.register_hparams
  def my_net_tiny():
    return HParams(hidden_size=32)

  a = registry.hparams("my_net_tiny")
  a.hidden_size = 64
  b = registry.hparams("my_net_tiny")
  assert isinstance(b, HParams) and b.hidden_size == 32 and a is not b
  assert registry.hparams_function("my_net_tiny") is my_net_tiny


def test_hparams_function_returning_none_is_an_error():
  @registry.register_hparams
  def broken_set():
    pass

  with pytest.raises(RegistrationError, match="broken_set.*returned None"):
    registry.hparams("broken_set")


def test_lists_are_sorted_and_help_string_names_all_three():
  for name in ("zeta_problem", "alpha_problem", "mid_problem"):
    registry.register_problem(name)(type(name, (FakeProblem,), {}))
  registry.register_model("zz_model")(type("ZZ", (), {}))
  registry.register_model("aa_model")(type("AA", (), {}))
  registry.register_hparams("hp_b")(lambda: HParams())
  registry.register_hparams("hp_a")(lambda: HParams())
  for names in (registry.list_problems(), registry.list_models(), registry.list_hparams()):
    assert names == sorted(names)
  assert registry.list_problems().index("alpha_problem") < registry.list_problems().index(
      "zeta_problem")
  text = registry.help_string()
  assert "Problems (" in text and "Models (" in text and "HParams sets (" in text
  for name in ("alpha_problem", "zeta_problem", "aa_model", "zz_model", "hp_a", "hp_b"):
    assert "  %s\n" % name in text + "\n"
  assert "_rev" in text and "_copy" in text


def test_taken_name_with_a_different_object_names_both_definitions():
  @registry.register_model("taken_model")
  class First:
    pass

  class Second:
    pass

  with pytest.raises(RegistrationError) as info:
    registry.register_model("taken_model")(Second)
  message = str(info.value)
  assert "taken_model" in message
  assert "First" in message and "Second" in message
  assert "test_registry.py:" in message  # file:line of the definitions
  assert registry.model("taken_model") is First  # the first one stays
  assert isinstance(info.value, (T2TUserError, ValueError))


def test_registering_the_same_object_twice_is_fine():
  class Same:
    pass

  registry.register_model("same_model")(Same)
  registry.register_model("same_model")(Same)
  assert registry.model("same_model") is Same


def _exec_module_file(path, module_name):
  spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[module_name] = module
  spec.loader.exec_module(module)
  return module


def test_importing_the_same_module_twice_does_not_clash(tmp_path):
  source = tmp_path / "twice_mod.py"
  source.write_text(
      "from t2t_lite import registry\n"
      "from t2t_lite.hparams import HParams\n"
      "@registry.register_problem\n"
      "class TwiceTask:\n"
      "  def __init__(self, was_reversed=False, was_copy=False):\n"
      "    pass\n"
      "@registry.register_hparams\n"
      "def twice_hparams():\n"
      "  return HParams(a=1)\n")
  try:
    first = _exec_module_file(str(source), "t2t_test_twice_mod")
    second = _exec_module_file(str(source), "t2t_test_twice_mod")  # a fresh execution
    assert first.TwiceTask is not second.TwiceTask
    assert registry.problem_class("twice_task") is second.TwiceTask  # the newest wins
    assert registry.hparams("twice_hparams").a == 1
  finally:
    sys.modules.pop("t2t_test_twice_mod", None)


def test_same_name_from_another_module_clashes(tmp_path):
  for module_name in ("t2t_test_clash_a", "t2t_test_clash_b"):
    (tmp_path / (module_name + ".py")).write_text(
        "from t2t_lite import registry\n"
        "@registry.register_model('clash_model')\n"
        "class Net:\n"
        "  pass\n")
  try:
    _exec_module_file(str(tmp_path / "t2t_test_clash_a.py"), "t2t_test_clash_a")
    with pytest.raises(RegistrationError) as info:
      _exec_module_file(str(tmp_path / "t2t_test_clash_b.py"), "t2t_test_clash_b")
    message = str(info.value)
    assert "t2t_test_clash_a.Net" in message and "t2t_test_clash_b.Net" in message
    assert "t2t_test_clash_a.py:2" in message and "t2t_test_clash_b.py:2" in message
  finally:
    sys.modules.pop("t2t_test_clash_a", None)
    sys.modules.pop("t2t_test_clash_b", None)


@pytest.mark.parametrize("bad", ["", "has space", "semi;colon", 5])
def test_invalid_names_are_rejected(bad):
  with pytest.raises(RegistrationError, match="name"):
    registry.register_model(name=bad)(type("X", (), {}))


def test_unknown_name_suggests_close_matches_and_usr_dir():
  registry.register_model("transformer_like")(type("T", (), {}))
  with pytest.raises(UnknownNameError) as info:
    registry.model("transformer_lik")
  message = str(info.value)
  assert "--model=transformer_lik" in message
  assert "did you mean 'transformer_like'" in message  # the closest first
  assert "--t2t_usr_dir" in message
  assert isinstance(info.value, KeyError) and isinstance(info.value, T2TUserError)


@pytest.mark.parametrize("lookup, flag", [
    (registry.problem, "--problem"),
    (registry.model, "--model"),
    (registry.hparams, "--hparams_set"),
    (registry.problem_class, "--problem"),
])
def test_unknown_name_for_every_kind(lookup, flag):
  with pytest.raises(UnknownNameError) as info:
    lookup("surely_not_registered_xyz")
  assert flag in str(info.value) and "--t2t_usr_dir" in str(info.value)


@pytest.mark.parametrize("lookup, register, obj", [
    (registry.problem, registry.register_problem, FakeProblem),
    (registry.problem_class, registry.register_problem, FakeProblem),
    (registry.model, registry.register_model, type("K", (), {})),
    (registry.hparams, registry.register_hparams, lambda: HParams()),
    (registry.hparams_function, registry.register_hparams, lambda: HParams()),
])
def test_unknown_name_is_a_key_error_with_a_plain_message(lookup, register, obj):
  register("keyerror_target")(obj)
  error = None
  try:
    lookup("keyerror_targt")
  except KeyError as e:  # what tensor2tensor's registry raised
    error = e
  assert isinstance(error, UnknownNameError)
  message = str(error)
  assert message == error.args[0]  # KeyError's str() would quote it; this one is as written
  assert message.startswith("--")
  assert "did you mean 'keyerror_target'?" in message


def test_unknown_name_with_nothing_close_lists_what_is_registered():
  registry._MODELS._items.clear()
  registry.register_model("alpha_net")(type("A", (), {}))
  with pytest.raises(UnknownNameError, match="registered: alpha_net"):
    registry.model("qqqqqq")
  registry._MODELS._items.clear()
  with pytest.raises(UnknownNameError, match="none are registered"):
    registry.model("qqqqqq")


def test_unhashable_or_non_string_name_is_an_unknown_name():
  with pytest.raises(UnknownNameError):
    registry.model(["a"])
  with pytest.raises(UnknownNameError):
    registry.problem(None)


def test_rev_and_copy_modifiers_construct_with_flags():
  calls = []

  @registry.register_problem("mod_task")
  class ModTask(FakeProblem):

    def __init__(self, **kwargs):
      calls.append(kwargs)
      super().__init__(**kwargs)

  rev = registry.problem("mod_task_rev")
  assert isinstance(rev, ModTask) and rev.was_reversed and not rev.was_copy
  assert calls[-1] == {"was_reversed": True}
  copy = registry.problem("mod_task_copy")
  assert copy.was_copy and not copy.was_reversed
  both = registry.problem("mod_task_copy_rev")
  assert both.was_copy and both.was_reversed
  assert calls[-1] == {"was_reversed": True, "was_copy": True}
  plain = registry.problem("mod_task")
  assert not plain.was_copy and not plain.was_reversed
  assert calls[-1] == {}
  assert registry.problem_class("mod_task_rev") is ModTask
  assert registry.parse_problem_name("mod_task_rev_copy") == ("mod_task", True, True)
  assert registry.parse_problem_name("mod_task") == ("mod_task", False, False)


def test_a_name_registered_with_a_suffix_is_looked_up_as_written():
  @registry.register_problem("real_rev")
  class RealRev(FakeProblem):
    pass

  p = registry.problem("real_rev")
  assert isinstance(p, RealRev) and not p.was_reversed


def test_modifier_on_unknown_base_is_an_unknown_name():
  with pytest.raises(UnknownNameError, match="--problem=nothing_here_rev"):
    registry.problem("nothing_here_rev")


def test_unregister():
  registry.register_model("gone_model")(type("G", (), {}))
  registry.unregister("model", "gone_model")
  assert "gone_model" not in registry.list_models()
  registry.unregister("model", "gone_model")  # no error
