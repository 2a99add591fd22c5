"""Tests for t2t_lite.hparams: access, typed parse, quoting, errors, JSON, copies."""
import copy
import math
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2t_lite.errors import HParamsError, T2TUserError
from t2t_lite.hparams import HParams, UnknownHParamError, to_parse_string


def make():
  return HParams(a=1, b=2.5, c=True, d=[1, 2], e="hello", n=None, fl=[0.5], sl=["x"],
                 bl=[True], empty=[])


# -- access and changes ---------------------------------------------------------------------


def test_attribute_access_values_contains_and_repr():
  hp = make()
  assert hp.a == 1 and hp.e == "hello" and hp.n is None
  assert "a" in hp and "zz" not in hp
  values = hp.values()
  assert values == {"a": 1, "b": 2.5, "c": True, "d": [1, 2], "e": "hello", "n": None,
                    "fl": [0.5], "sl": ["x"], "bl": [True], "empty": []}
  values["d"].append(3)  # a copy
  assert hp.d == [1, 2]
  assert repr(HParams(a=1, e="x")) == "HParams(a=1, e='x')"
  assert hp.get("a") == 1 and hp.get("zz", 7) == 7


def test_positional_dict_and_kwargs():
  hp = HParams({"a": 1}, b=2)
  assert hp.values() == {"a": 1, "b": 2}


def test_unknown_attribute_is_attribute_error_with_close_match():
  hp = HParams(hidden_size=8)
  with pytest.raises(AttributeError, match="hidden_sise.*Did you mean 'hidden_size'"):
    hp.hidden_sise  # pylint: disable=pointless-statement
  assert not hasattr(hp, "nope")
  assert getattr(hp, "nope", 3) == 3
  with pytest.raises(HParamsError):
    hp.nope  # pylint: disable=pointless-statement


def test_add_set_del():
  hp = HParams(a=1)
  hp.add_hparam("b", 2.0)
  assert hp.b == 2.0
  with pytest.raises(HParamsError, match="already exists"):
    hp.add_hparam("a", 3)
  hp.set_hparam("a", 5)
  assert hp.a == 5
  hp.set_hparam("b", 3)  # int for a float hparam
  assert hp.b == 3.0 and isinstance(hp.b, float)
  hp.del_hparam("a")
  assert "a" not in hp
  hp.del_hparam("a")  # no error, as tensor2tensor
  with pytest.raises(UnknownHParamError, match="Unknown hparam 'bb'.*'b'"):
    hp.set_hparam("bb", 1)


@pytest.mark.parametrize("name, value", [
    ("a", 2.5), ("a", "x"), ("a", True), ("b", "x"), ("c", 1), ("e", 3), ("d", 1),
    ("d", ["x"]), ("d", [1.5]), ("e", ["x"]),
])
def test_set_hparam_type_errors(name, value):
  hp = make()
  with pytest.raises(HParamsError, match="Cannot set hparam %r" % name):
    hp.set_hparam(name, value)
  assert hp == make()


def test_set_hparam_accepts_none_and_fills_none_and_empty_lists():
  hp = make()
  hp.set_hparam("a", None)
  hp.set_hparam("n", "now a string")
  hp.set_hparam("empty", [1, 2])
  hp.set_hparam("fl", [1, 2])
  assert hp.a is None and hp.n == "now a string" and hp.empty == [1, 2]
  assert hp.fl == [1.0, 2.0] and all(isinstance(v, float) for v in hp.fl)


def test_setattr_stores_any_value_and_adds_new_names():
  hp = HParams(a=1)
  hp.a = "anything"  # like tensor2tensor's HParams: no check on plain assignment
  hp.new_name = (1, 2)
  assert hp.a == "anything" and hp.new_name == [1, 2]
  del hp.new_name
  assert "new_name" not in hp


@pytest.mark.parametrize("bad", ["_private", "1abc", "has-dash", "values", "parse", "copy", ""])
def test_invalid_names(bad):
  with pytest.raises(HParamsError, match="Invalid hparam name"):
    HParams().add_hparam(bad, 1)


def test_normalizes_tuples_numbers_and_mixed_lists():
  hp = HParams(t=(1, 2), m=[1, 2.5])
  assert hp.t == [1, 2] and hp.m == [1.0, 2.5] and isinstance(hp.m[0], float)


def test_equality_is_typed():
  assert HParams(a=1) == HParams(a=1)
  assert HParams(a=1) != HParams(a=1.0)
  assert HParams(a=1) != HParams(a=True)
  assert HParams(a=1) != HParams(a=1, b=2)
  assert HParams(a=float("nan")) == HParams(a=float("nan"))
  assert HParams(a=1) != {"a": 1}


def test_copy_is_deep_and_equal():
  hp = HParams(d=[1, 2], m={"inputs": 3})
  for other in (hp.copy(), copy.copy(hp), copy.deepcopy(hp), pickle.loads(pickle.dumps(hp))):
    assert other == hp and other is not hp
    other.d.append(3)
    other.m["inputs"] = 4
    assert hp.d == [1, 2] and hp.m == {"inputs": 3}


def test_override_from_dict_checks_and_is_all_or_nothing():
  hp = make()
  assert hp.override_from_dict({"a": 3, "b": 1}) is hp
  assert hp.a == 3 and hp.b == 1.0
  with pytest.raises(HParamsError):
    hp.override_from_dict({"a": 4, "e": 5})
  assert hp.a == 3
  with pytest.raises(UnknownHParamError, match="'zz'"):
    hp.override_from_dict({"zz": 1})


def test_dict_values_are_stored_but_not_parsed():
  hp = HParams(vocab_size={"inputs": 6, "targets": 6})
  assert hp.vocab_size["targets"] == 6
  assert HParams.from_json(hp.to_json()) == hp
  with pytest.raises(HParamsError, match="vocab_size.*cannot be set"):
    hp.parse("vocab_size=3")


# -- parse ----------------------------------------------------------------------------------


def test_parse_the_example_and_returns_self():
  hp = make()
  assert hp.parse("a=3,b=2,c=false,d=[4, 5],e=hello world") is hp
  assert hp.values()["a"] == 3 and hp.b == 2.0 and isinstance(hp.b, float)
  assert hp.c is False and hp.d == [4, 5] and hp.e == "hello world"


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("false", False), ("True", True), ("False", False), ("1", True),
    ("0", False), ("TRUE", True),
])
def test_parse_bool(text, expected):
  assert make().parse("c=" + text).c is expected


@pytest.mark.parametrize("text, expected", [
    ("-3", -3), ("+4", 4), (" 12 ", 12), ("007", 7),
])
def test_parse_int(text, expected):
  hp = make().parse("a=" + text)
  assert hp.a == expected and type(hp.a) is int


@pytest.mark.parametrize("text, expected", [
    ("2", 2.0), ("-0.5", -0.5), ("1e-9", 1e-9), (".5", 0.5), ("3.", 3.0), ("1E3", 1000.0),
    ("inf", math.inf), ("-inf", -math.inf),
])
def test_parse_float(text, expected):
  hp = make().parse("b=" + text)
  assert hp.b == expected and type(hp.b) is float


def test_parse_nan():
  assert math.isnan(make().parse("b=nan").b)


def test_parse_lists_use_the_element_type():
  hp = make().parse("d=[7],fl=[1, 2.5],sl=[a, 1, true],bl=[true,0],empty=[]")
  assert hp.d == [7] and hp.fl == [1.0, 2.5] and hp.sl == ["a", "1", "true"]
  assert hp.bl == [True, False] and hp.empty == []
  assert all(type(v) is float for v in hp.fl)


@pytest.mark.parametrize("text, expected", [
    ("[1,2]", [1, 2]), ("[1,2.5]", [1.0, 2.5]), ("[true,false]", [True, False]),
    ("[a,b]", ["a", "b"]), ("['1',2]", ["1", "2"]), ("[]", []),
])
def test_parse_empty_list_infers_from_text(text, expected):
  value = make().parse("empty=" + text).empty
  assert value == expected and [type(v) for v in value] == [type(v) for v in expected]


@pytest.mark.parametrize("text, expected", [
    ("5", 5), ("5.0", 5.0), ("1e3", 1000.0), ("true", True), ("hello", "hello"),
    ("'5'", "5"), ("[1,2]", [1, 2]), ("", ""),
])
def test_parse_none_takes_the_type_the_text_shows(text, expected):
  value = make().parse("n=" + text).n
  assert value == expected and type(value) is type(expected)


def test_a_filled_none_keeps_its_new_type():
  hp = make().parse("n=5")
  with pytest.raises(HParamsError, match="int"):
    hp.parse("n=2.5")


def test_string_keeps_the_text():
  hp = make()
  assert hp.parse("e=5").e == "5"
  assert hp.parse("e=  spaced out  ").e == "spaced out"
  assert hp.parse("e=").e == ""
  assert hp.parse(r"e=C:\data\x").e == "C:\\data\\x"  # unquoted backslashes are kept


@pytest.mark.parametrize("written, expected", [
    ("'a,b=c'", "a,b=c"),
    ('"a,b=c"', "a,b=c"),
    ("', '", ", "),
    ("'  padded  '", "  padded  "),
    ("''", ""),
    (r"'it\'s'", "it's"),
    (r'"say \"hi\""', 'say "hi"'),
    ("\"it's\"", "it's"),
    (r"'back\\slash'", "back\\slash"),
    (r"'C:\data'", "C:\\data"),  # a backslash before another character is kept
    ("'[1,2]'", "[1,2]"),
    ("'x' ", "x"),
])
def test_quoted_strings(written, expected):
  assert make().parse("e=%s" % written).e == expected


def test_quoted_list_elements():
  hp = make().parse("sl=['a,b', \"c]\", d ]")
  assert hp.sl == ["a,b", "c]", "d"]


def test_whitespace_empty_items_and_trailing_commas_are_fine():
  hp = make().parse("  a = 4 ,, b=1.5 ,  ")
  assert hp.a == 4 and hp.b == 1.5
  assert make().parse("") == make()
  assert make().parse(None) == make()
  assert make().parse(" , ") == make()


@pytest.mark.parametrize("text, quoted, why", [
    ("a=2.5", "a=2.5", "not an integer"),
    ("a=2.0", "a=2.0", "not an integer"),
    ("a=x", "a=x", "not an integer"),
    ("a='1'", "a='1'", "quoted text is a string"),
    ("a=", "a=", "empty"),
    ("b=abc", "b=abc", "not a number"),
    ("c=yes", "c=yes", "not true, false, 1 or 0"),
    ("c=2", "c=2", "not true, false, 1 or 0"),
    ("d=3", "d=3", "write d=\\[...\\]"),
    ("d=[1,x]", "d=[1,x]", "not an integer"),
    ("d=[1,,2]", "d=[1,,2]", "empty list element"),
    ("d=[1,2", "d=[1,2", "no closing"),
    ("d=[[1]]", "d=[[1]", "nested lists"),
    ("a=[1]", "a=[1]", "not a list"),
    ("e=a,b", "b", "expected NAME=VALUE"),
    ("e=a=b", "e=a=b", "must be quoted"),
    ("e=x]", "e=x]", "must be quoted"),
    ("e='x", "e='x", "no closing '"),
    ("e='x'y", "e='x'y", "unexpected 'y'"),
    ("e=it's", "e=it's", "must be quoted"),
    ("a 1", "a 1", "expected NAME=VALUE"),
    ("=1", "=1", "not an hparam name"),
    ("9a=1", "9a=1", "not an hparam name"),
])
def test_parse_errors_quote_the_piece(text, quoted, why):
  hp = make()
  with pytest.raises(HParamsError) as info:
    hp.parse("sl=[q]," + text)
  message = str(info.value)
  assert repr(quoted) in message or ("'%s'" % quoted) in message, message
  assert re.search(why, message), message
  assert isinstance(info.value, ValueError) and isinstance(info.value, T2TUserError)
  assert hp == make()  # all or nothing


def test_unknown_name_names_it_and_close_matches():
  hp = HParams(learning_rate=0.1, dropout=0.1)
  with pytest.raises(HParamsError) as info:
    hp.parse("learning_rte=0.2")
  assert "'learning_rte'" in str(info.value)
  assert "Did you mean 'learning_rate'?" in str(info.value)


def test_same_name_twice_is_an_error():
  with pytest.raises(HParamsError, match="'a=2': a is set twice"):
    make().parse("a=1,a=2")


def test_non_string_is_an_error():
  with pytest.raises(HParamsError):
    make().parse(5)


def test_long_pieces_are_shortened_in_messages():
  with pytest.raises(HParamsError) as info:
    make().parse("a=" + "9" * 500 + "x")
  assert len(str(info.value)) < 300


def test_huge_integer_is_a_value_error_not_a_crash():
  try:
    value = make().parse("a=" + "9" * 5000).a
  except HParamsError:
    return  # past Python's int digit limit
  assert value == int("9" * 5000)


# -- writing and round trips ----------------------------------------------------------------


def test_to_parse_string_quotes_strings_and_skips_none():
  hp = HParams(a=1, b=2.5, c=True, d=[1, 2], e="it's, a=b", n=None, m={"x": 1})
  text = to_parse_string(hp)
  assert text == "a=1,b=2.5,c=true,d=[1,2],e='it\\'s, a=b'"
  assert hp.to_parse_string() == text
  target = HParams(a=0, b=0.0, c=False, d=[], e="", n=None, m={})
  assert target.parse(text).values() == dict(hp.values(), m={})


def test_json_round_trip():
  hp = make()
  text = hp.to_json()
  assert HParams.from_json(text) == hp
  assert HParams.from_json(hp.to_json(indent=2)) == hp
  assert '"a": 1' in text


def test_to_json_takes_json_dumps_arguments_as_tensor2tensor():
  hp = HParams(b=2, a=[1, 2])
  assert hp.to_json() == '{"b": 2, "a": [1, 2]}'  # compact, in the order names were added
  assert hp.to_json(sort_keys=True) == '{"a": [1, 2], "b": 2}'
  assert hp.to_json(separators=(",", ":")) == '{"b":2,"a":[1,2]}'
  assert hp.to_json(indent=1, sort_keys=True) == '{\n "a": [\n  1,\n  2\n ],\n "b": 2\n}'
  # tensor2tensor's positional order: indent, separators, sort_keys.
  assert hp.to_json(None, (",", ":"), True) == '{"a":[1,2],"b":2}'
  assert HParams.from_json(hp.to_json(indent=0, separators=(",", ":"), sort_keys=True)) == hp


def test_parser_module_reads_values_without_an_hparams():
  from t2t_lite import hparams_parser  # pylint: disable=g-import-not-at-top
  current = {"a": 1, "b": [0.5], "c": None}
  assert hparams_parser.parse_values("c='x', a=3, b=[1,2]", current) == {
      "c": "x", "a": 3, "b": [1.0, 2.0]}
  assert current == {"a": 1, "b": [0.5], "c": None}  # not changed
  with pytest.raises(HParamsError, match="unknown hparam 'aa'.*Did you mean 'a'"):
    hparams_parser.parse_values("aa=1", current)
  assert hparams_parser.to_parse_string(current) == "a=1,b=[0.5]"


@pytest.mark.parametrize("bad", ["[1, 2]", "not json", "{\"_x\": 1}", "", "{\"values\": 1}"])
def test_from_json_errors(bad):
  with pytest.raises(HParamsError):
    HParams.from_json(bad)


def test_to_json_names_a_value_json_cannot_write():
  with pytest.raises(HParamsError, match="'enc'"):
    HParams(a=1, enc=object()).to_json()


_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: not hasattr(HParams, n))
_FLOATS = st.floats(allow_nan=False, width=64)
_TEXT = st.text(max_size=12)
_VALUES = st.one_of(
    st.booleans(), st.integers(-10**12, 10**12), _FLOATS, _TEXT,
    st.lists(st.booleans(), max_size=4), st.lists(st.integers(-1000, 1000), max_size=4),
    st.lists(_FLOATS, max_size=4), st.lists(_TEXT, max_size=4), st.none())


def _zero_like(value):
  """A default of the same type as `value`, for the target of a parse round trip."""
  if isinstance(value, list):
    return [_zero_like(value[0])] if value else []
  return None if value is None else type(value)()


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_NAMES, _VALUES, max_size=8))
def test_property_typed_values_round_trip(values):
  hp = HParams(values)
  # JSON.
  assert HParams.from_json(hp.to_json()) == hp
  # Parse strings, into hparams with the same types and other values ...
  target = HParams({k: _zero_like(v) for k, v in values.items()})
  assert target.parse(to_parse_string(hp)) == hp
  # ... and into hparams that are all None or empty lists: the written text shows the type.
  blank = HParams({k: [] if isinstance(v, list) else None for k, v in values.items()})
  blank.parse(to_parse_string(hp))
  for name, value in values.items():
    if value is None or value == []:
      continue
    assert HParams(x=getattr(blank, name)) == HParams(x=value), name


_PARSE_ALPHABET = st.sampled_from(list("ab=,[]'\"\\ 1.e-x\n") + ["true", "a=", "b=", "[1,"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_PARSE_ALPHABET, max_size=30).map("".join)))
def test_property_arbitrary_text_raises_only_value_error(text):
  hp = HParams(a=1, b=2.5, c=True, d=[1], e="x", n=None, l=[])
  before = hp.copy()
  try:
    hp.parse(text)
  except HParamsError:
    assert hp == before


_LONG_INPUTS = [
    # (name, text, the values it sets or the error it raises)
    ("list", "d=[" + "1," * 50000 + "1]", {"d": [1] * 50001}),
    ("commas", "," * 100000, {}),
    ("backslashes", "e=" + "\\" * 100000, {"e": "\\" * 100000}),
    ("quotes", "'" * 100000, "expected NAME=VALUE"),
    ("equals", "=" * 100000, "is not an hparam name"),
    ("brackets", "[" * 100000, "expected NAME=VALUE"),
    ("repeats", "a=1," * 20000, "a is set twice"),
]


@pytest.mark.parametrize("text,expected", [case[1:] for case in _LONG_INPUTS],
                         ids=[case[0] for case in _LONG_INPUTS])
def test_long_inputs_are_read_in_one_pass(text, expected):
  """100k characters parse to the right values, or fail with a short error that leaves the
  hparams as they were (a parser that rescans the text would take minutes here)."""
  hp = make()
  if isinstance(expected, str):
    with pytest.raises(HParamsError, match=expected) as raised:
      hp.parse(text)
    assert len(str(raised.value)) < 300
    assert hp == make()
  else:
    hp.parse(text)
    want = make()
    for name, value in expected.items():
      setattr(want, name, value)
    assert hp == want
