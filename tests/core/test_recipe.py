from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from nmkit.core.errors import ConfigError, InputError
from nmkit.core.recipe import build_config, option, parse_set_items, read_recipe, to_plain


@dataclass(frozen=True)
class Inner:
    size: int = option(3, "a size", ge=1)
    path: Path | None = option(None, "a file")


@dataclass(frozen=True)
class Outer:
    name: str = option("x", "a name")
    rate: float = option(0.5, "a rate", gt=0, lt=1)
    mode: Literal["fast", "exact"] = option("fast", "how")
    inner: Inner = option(Inner(), "nested")
    maybe: Inner | None = option(None, "optional nested")
    flag: bool = option(False, "a flag")


def build(*layers):
    return build_config(Outer, [(f"layer{i}", raw, Path("/base")) for i, raw in enumerate(layers)])


def test_defaults_then_layers_in_order():
    config = build({"rate": 0.25, "inner": {"size": 7}}, {"rate": 0.75})
    assert config.rate == 0.75 and config.inner.size == 7 and config.name == "x"


def test_partial_nested_layer_keeps_other_nested_fields():
    config = build({"inner": {"size": 9, "path": "a.txt"}}, {"inner": {"size": 2}})
    assert config.inner.size == 2 and config.inner.path == Path("/base/a.txt")


def test_optional_nested_mapping_is_built_from_defaults():
    assert build({"maybe": {"size": 4}}).maybe == Inner(size=4)


def test_unknown_key_names_path_and_suggests_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'sise' at 'inner.sise'; did you mean 'inner.size'\?"):
        build({"inner": {"sise": 1}})


def test_unknown_key_without_near_miss_lists_valid_keys():
    with pytest.raises(ConfigError, match="valid keys: flag, inner, maybe, mode, name, rate"):
        build({"zzzzzz": 1})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"rate": "fast"}, "field 'rate' expects a number, found 'fast'"),
        ({"rate": 1.5}, "field 'rate' expects a value < 1, found 1.5"),
        ({"inner": {"size": 0}}, "field 'inner.size' expects a value >= 1, found 0"),
        ({"inner": {"size": 2.5}}, "field 'inner.size' expects an integer, found 2.5"),
        ({"mode": "fsat"}, "expects one of fast, exact \\(did you mean 'fast'\\?\\)"),
        ({"flag": "yes"}, "field 'flag' expects true or false"),
        ({"inner": 3}, "'inner' must be a mapping"),
        ({"rate": 10**400}, "field 'rate' expects a finite number"),  # beyond float range: no OverflowError
        ({"inner": {"size": -10**400}}, "field 'inner.size' expects a value >= 1"),
    ],
)
def test_bad_values_name_field_and_expectation(raw, message):
    with pytest.raises(ConfigError, match=message):
        build(raw)


def test_integers_accept_scientific_notation_strings():
    assert build({"inner": {"size": "1e6"}}).inner.size == 1_000_000


def test_set_items_parse_dotted_keys_and_yaml_values():
    assert parse_set_items(["inner.size=5", "name=abc", "flag=true", "rate=0.1"]) == {
        "inner": {"size": 5}, "name": "abc", "flag": True, "rate": 0.1}


@pytest.mark.parametrize("item", ["novalue", "=3"])
def test_set_items_without_key_or_equals_are_rejected(item):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set_items([item])


def test_read_recipe_reports_yaml_error_with_line(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(InputError, match=r"r.yaml: not valid YAML at line \d"):
        read_recipe(bad)


def test_read_recipe_rejects_non_mapping_and_missing(tmp_path):
    listing = tmp_path / "l.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="expected a mapping"):
        read_recipe(listing)
    with pytest.raises(InputError, match="no such file"):
        read_recipe(tmp_path / "missing.yaml")


def test_to_plain_round_trips_through_build():
    config = build({"maybe": {"size": 4, "path": "f.npy"}, "mode": "exact"})
    again = build_config(Outer, [("plain", to_plain(config), None)])
    assert again == config
