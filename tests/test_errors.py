"""One error base: every exception class predelinq defines derives from
``predelinq.errors.PredelinqError``, so an entry point can tell our errors (mapped to an exit
code or an HTTP status, shown as one line) from bugs. The package is walked and every module
imported, so a new module is checked without being listed here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import predelinq
from predelinq.errors import PredelinqError

# Alembic's environment refuses to be imported outside a migration (on purpose).
NOT_IMPORTABLE = {"predelinq.db.migrations.env"}


def _modules() -> list[str]:
    names = [predelinq.__name__]
    for module in pkgutil.walk_packages(predelinq.__path__, prefix="predelinq."):
        if module.name not in NOT_IMPORTABLE:
            names.append(module.name)
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_derives_from_predelinq_error():
    classes = _exception_classes()
    # the walk reaches every package: errors from each layer are among them
    for expected in (
        "predelinq.errors.TrainingError",
        "predelinq.ingest.problems.IngestError",
        "predelinq.modeling.registry.UnknownVersionError",
        "predelinq.retraining.lock.RetrainingBusyError",
        "predelinq.serving.score.NoChampionError",
    ):
        assert expected in classes
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, PredelinqError))
    assert outside == []


def test_errors_keep_the_bases_callers_rely_on():
    """A secondary base stays where code catches it (``except ValueError``...)."""
    from predelinq.features.declarations import FeatureDeclarationError
    from predelinq.features.export import CustomerIdsError

    assert issubclass(FeatureDeclarationError, ValueError)
    assert issubclass(CustomerIdsError, ValueError)
