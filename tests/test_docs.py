"""The README documents every setting and every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from predelinq.config import Settings
from predelinq.features import FEATURES
from test_cli import command_paths

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


@pytest.mark.parametrize("feature", FEATURES, ids=lambda feature: feature.name)
def test_every_feature_is_documented(feature):
    row = f"| `{feature.name}` | {feature.family} |"
    assert row in FEATURES_DOC, f"docs/features.md has no table row for {feature.name}"
