"""The README documents every setting and every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from predelinq.cli import app
from predelinq.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    field = Settings.model_fields[name]
    aliases = field.validation_alias.choices if field.validation_alias else []
    assert f"`{name}`" in README
    for alias in aliases:
        assert f"`{alias}`" in README


@pytest.mark.parametrize(
    "command", [c.name or c.callback.__name__ for c in app.registered_commands]
)
def test_every_command_is_documented(command):
    assert f"`predelinq {command}" in README


def test_quickstart_has_the_two_commands():
    assert "make demo" in README and "make test" in README
