"""liquid_nav.validation: number predicates, dataclass checks and the YAML mapping reader with key paths."""
import math
from dataclasses import dataclass

import pytest

from liquid_nav.validation import MappingReader, check_field_types, is_number, is_number_list, require_positive

NAN, INF = float("nan"), float("inf")


class MyError(ValueError):
    """Stands for a caller's own error type."""


def reader(data, path=""):
    return MappingReader("f.yaml", path, data, MyError)


@pytest.mark.parametrize("value", [0, -3, 2.5, -0.0, 1e300])
def test_is_number_accepts_finite_ints_and_floats(value):
    assert is_number(value)


@pytest.mark.parametrize("value", [True, False, NAN, INF, -INF, "1", None, [1]])
def test_is_number_refuses_bools_non_finite_and_non_numbers(value):
    assert not is_number(value)


def test_is_number_list_needs_a_list_or_tuple_of_the_length_with_finite_numbers():
    assert is_number_list([1, 2.0, 3], 3) and is_number_list((0.5, -1.0), 2)
    for value in ([1, 2], [1, 2, 3, 4], [1, NAN, 3], [1, True, 3], "abc", {1: 2, 3: 4, 5: 6}, None):
        assert not is_number_list(value, 3), value


@dataclass
class Limits:
    speed: float = 1.0
    rate: float = 2.0


def test_require_positive_accepts_finite_positive_numbers():
    require_positive(Limits(speed=0.1, rate=3), ("speed", "rate"))


@pytest.mark.parametrize("value", [NAN, INF, 0, 0.0, -1.0, True, "2"])
def test_require_positive_refuses_and_names_the_field(value):
    with pytest.raises(MyError, match=rf"^Limits\.rate is {value!r}; expected a finite number > 0$"):
        require_positive(Limits(rate=value), ("speed", "rate"), MyError)


def test_require_positive_raises_value_error_by_default():
    with pytest.raises(ValueError, match="Limits.speed"):
        require_positive(Limits(speed=0.0), ("speed",))


@dataclass(frozen=True)
class Typed:
    count: int = 1
    scale: float = 1.0
    name: str = "a"


def test_check_field_types_accepts_matching_types_and_stores_ints_of_float_fields_as_floats():
    config = Typed(count=3, scale=2, name="b")
    check_field_types(config, MyError, "typed")
    assert config.scale == 2.0 and isinstance(config.scale, float) and isinstance(config.count, int)


@pytest.mark.parametrize("fields, message", [
    ({"count": 1.5}, "typed.count must be an integer, got 1.5"),
    ({"count": True}, "typed.count must be an integer, got True"),
    ({"scale": "2"}, "typed.scale must be a number, got '2'"),
    ({"scale": False}, "typed.scale must be a number, got False"),
    ({"name": 3}, "typed.name must be a string, got 3"),
])
def test_check_field_types_refuses_other_types_naming_the_field(fields, message):
    with pytest.raises(MyError, match=f"^{message}$"):
        check_field_types(Typed(**fields), MyError, "typed")


def expect_error(read, message):
    """``read()`` raises MyError with exactly ``f.yaml: key ...: expected ...`` = ``message``."""
    with pytest.raises(MyError) as caught:
        read()
    assert str(caught.value) == message


def test_a_reader_needs_a_mapping():
    expect_error(lambda: reader([1, 2]), "f.yaml: key '<top level>': expected a mapping, got list [1, 2]")
    expect_error(lambda: reader(None, "area"), "f.yaml: key 'area': expected a mapping, got NoneType None")


def test_number_reads_defaults_bounds_and_integers():
    node = reader({"a": 2, "b": 0.5, "n": 7})
    assert node.number("a") == 2.0 and isinstance(node.number("a"), float)
    assert node.number("b", low=0.0, high=1.0) == 0.5
    assert node.number("n", integer=True) == 7 and isinstance(node.number("n", integer=True), int)
    assert node.number("missing", default=3) == 3.0


@pytest.mark.parametrize("value", [True, "1", NAN, INF, [1], 11])
def test_number_refuses_non_numbers_and_values_out_of_bounds(value):
    expect_error(lambda: reader({"x": value}, "area").number("x", low=0, high=10),
                 f"f.yaml: key 'area.x': expected a number in [0, 10], got {value!r}")


def test_number_refuses_a_float_where_an_integer_is_expected_and_a_missing_required_key():
    expect_error(lambda: reader({"n": 2.5}).number("n", integer=True),
                 f"f.yaml: key 'n': expected an integer in [{-math.inf}, {math.inf}], got 2.5")
    expect_error(lambda: reader({}).number("n"), "f.yaml: key 'n': expected this key to be present (it is required)")


def test_range_reads_pairs_and_single_numbers():
    node = reader({"pair": [1, 2.5], "one": 3})
    assert node.range("pair") == (1.0, 2.5)
    assert node.range("one") == (3.0, 3.0)
    assert node.range("missing", default=[0, 1]) == (0.0, 1.0)


@pytest.mark.parametrize("value, expected", [
    ([1, 2, 3], "a [min, max] pair of numbers (or one number), got [1, 2, 3]"),
    ("1", "a [min, max] pair of numbers (or one number), got '1'"),
    ([True, 2], "a [min, max] pair of numbers (or one number), got [True, 2]"),
    ([0, NAN], "finite numbers, got [0, nan]"),
    ([2, 1], "min <= max, got [2.0, 1.0]"),
    ([-1, 1], "values within [0.0, 5.0], got [-1.0, 1.0]"),
])
def test_range_refuses_bad_pairs_naming_the_key(value, expected):
    expect_error(lambda: reader({"r": value}, "trees").range("r", low=0.0, high=5.0),
                 f"f.yaml: key 'trees.r': expected {expected}")


def test_vector_reads_lists_of_finite_numbers_above_a_bound():
    node = reader({"v": [1, 2, 3], "size": [0.5, 0.5]})
    assert node.vector("v") == (1.0, 2.0, 3.0)
    assert node.vector("size", length=2, low=0.0) == (0.5, 0.5)
    assert node.vector("missing", default=[0, 0, 0]) == (0.0, 0.0, 0.0)
    expect_error(lambda: reader({"v": [1, 2]}).vector("v"),
                 "f.yaml: key 'v': expected a list of 3 finite numbers, got [1, 2]")
    expect_error(lambda: reader({"v": [1, NAN, 3]}).vector("v"),
                 "f.yaml: key 'v': expected a list of 3 finite numbers, got [1, nan, 3]")
    expect_error(lambda: reader({"v": [1, -2, 3]}).vector("v", low=0.0),
                 "f.yaml: key 'v': expected a list of 3 finite numbers >= 0.0, got [1, -2, 3]")


def test_choice_flag_and_text():
    node = reader({"shape": "box", "on": False, "name": "forest"})
    assert node.choice("shape", ("box", "cone")) == "box"
    assert node.choice("placement", ("anywhere", "streets"), default="anywhere") == "anywhere"
    assert node.flag("on", True) is False and node.flag("missing", True) is True
    assert node.text("name") == "forest" and node.text("missing", default="") == ""
    expect_error(lambda: reader({"shape": "cube"}).choice("shape", ("box", "cone")),
                 "f.yaml: key 'shape': expected one of ['box', 'cone'], got 'cube'")
    expect_error(lambda: reader({"on": "yes"}).flag("on", True), "f.yaml: key 'on': expected true or false, got 'yes'")
    expect_error(lambda: reader({"name": 3}).text("name"), "f.yaml: key 'name': expected a string, got 3")


def test_raw_returns_the_value_as_it_is_or_refuses_a_missing_required_key():
    node = reader({"any": {"x": [1, "a"]}})
    assert node.raw("any") == {"x": [1, "a"]} and node.raw("missing", default=[]) == []
    expect_error(lambda: reader({}).raw("any"), "f.yaml: key 'any': expected this key to be present (it is required)")


def test_child_and_children_carry_the_key_path_and_the_error_type():
    node = reader({"target": {"size": -1}, "props": [{"count": 1}, {"count": "x"}]})
    target = node.child("target")
    expect_error(lambda: target.number("size", low=0.0),
                 f"f.yaml: key 'target.size': expected a number in [0.0, {math.inf}], got -1")
    assert node.child("light", required=False) is None
    expect_error(lambda: node.child("sky"), "f.yaml: key 'sky': expected this key to be present (it is required)")
    expect_error(lambda: reader({"sky": None}).child("sky"), "f.yaml: key 'sky': expected a mapping, got nothing (null)")
    assert reader({"light": None}).child("light", required=False) is None
    props = node.children("props")
    assert props[0].number("count") == 1.0
    expect_error(lambda: props[1].number("count"),
                 f"f.yaml: key 'props[1].count': expected a number in [{-math.inf}, {math.inf}], got 'x'")
    assert node.children("missing") == []
    expect_error(lambda: reader({"props": {"a": 1}}).children("props"),
                 "f.yaml: key 'props': expected a list of mappings, got {'a': 1}")
    expect_error(lambda: reader({"props": [3]}).children("props"),
                 "f.yaml: key 'props[0]': expected a mapping, got int 3")


def test_has_does_not_mark_a_key_as_read_and_finish_refuses_unread_keys():
    node = reader({"name": "a", "nmae": "b"}, "world")
    assert node.has("nmae") and not node.has("other")
    node.text("name")
    expect_error(node.finish, "f.yaml: key 'world.nmae': expected one of the known keys ['name'] (unknown key 'nmae')")
    complete = reader({"name": "a"})
    complete.text("name")
    complete.finish()


def test_errors_default_to_value_error():
    with pytest.raises(ValueError, match="f.yaml: key 'x'"):
        MappingReader("f.yaml", "", {}).number("x")
