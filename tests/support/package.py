"""The predelinq package as a whole: every module imported, every exception class it defines.
Walked, not listed, so a new module is checked without being named in a test."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import predelinq

# Alembic's environment refuses to be imported outside a migration (on purpose).
NOT_IMPORTABLE = {"predelinq.db.migrations.env"}


def module_names() -> list[str]:
    """``predelinq`` and every module under it that can be imported."""
    walked = pkgutil.walk_packages(predelinq.__path__, prefix="predelinq.")
    return [predelinq.__name__, *(m.name for m in walked if m.name not in NOT_IMPORTABLE)]


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class predelinq defines, by ``module.QualName`` of its definition."""
    found: dict[str, type[BaseException]] = {}
    for name in module_names():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return found
