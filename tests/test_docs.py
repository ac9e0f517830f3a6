"""The README documents every setting and every command; docs/features.md every built-in
feature (its generated tables in step with builtin.toml), aggregation and field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from predelinq.config import Settings
from predelinq.features import builtin_features, feature_set
from predelinq.features.declarations import AGGREGATIONS, FIELDS
from predelinq.features.docs import END, START, with_builtin_tables
from support.cli import command_paths

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FEATURES_DOC = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    field = Settings.model_fields[name]
    aliases = field.validation_alias.choices if field.validation_alias else []
    assert f"`{name}`" in README
    for alias in aliases:
        assert f"`{alias}`" in README


@pytest.mark.parametrize("command", command_paths())
def test_every_command_is_documented(command):
    assert f"`predelinq {command}" in README


def test_quickstart_has_the_two_commands():
    assert "make demo" in README and "make test" in README


@pytest.mark.parametrize("feature", builtin_features(), ids=lambda feature: feature.name)
def test_every_builtin_feature_is_documented(feature):
    row = f"| `{feature.name}` |"
    assert row in FEATURES_DOC, f"docs/features.md has no table row for {feature.name}"


def test_the_generated_feature_tables_are_in_step_with_builtin_toml():
    assert FEATURES_DOC.count(START) == 1 and FEATURES_DOC.count(END) == 1
    assert with_builtin_tables(FEATURES_DOC) == FEATURES_DOC, (
        "docs/features.md is out of step with builtin.toml: run `python -m predelinq.features.docs`"
    )


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
def test_every_aggregation_is_documented(agg):
    assert f"`{agg}`" in FEATURES_DOC


@pytest.mark.parametrize(
    ("source", "field"),
    [(source, field) for source, fields in FIELDS.items() for field in fields],
    ids=lambda value: value,
)
def test_every_field_is_documented(source, field):
    assert f"`{field}`" in FEATURES_DOC
    assert f"`{source}`" in FEATURES_DOC


def test_the_worked_example_parses():
    section = FEATURES_DOC.split("## A worked example", 1)[1]
    (block,) = re.findall(r"```toml\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    document = tomllib.loads(block)
    features = feature_set(document["features"], document["categories"])
    assert features.names[-2:] == ("fee_share_of_debits_90", "days_deep_overdraft_90")
    assert features.features[-2].origin == (
        "predelinq.toml [[features]] #1 ('fee_share_of_debits_90')"
    )
