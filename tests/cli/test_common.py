"""The CLI's one error table (``cli/common.py``): every error predelinq raises on purpose has
an exit code, each row names the class where it is defined, and no row hides behind an
earlier, more general one."""

from __future__ import annotations

import importlib

import pytest

from predelinq.cli.common import ERROR_EXITS, ErrorExit, ExitCode
from predelinq.errors import PredelinqError
from support.package import exception_classes


def _resolved(row: ErrorExit) -> type[BaseException]:
    importlib.import_module(row.error.rpartition(".")[0])
    cls = row.error_class()
    assert cls is not None, f"{row.error} does not name an exception class"
    return cls


def _predelinq_errors() -> set[type[PredelinqError]]:
    return {
        cls
        for cls in exception_classes().values()
        if issubclass(cls, PredelinqError) and cls is not PredelinqError
    }


@pytest.mark.parametrize("row", ERROR_EXITS, ids=lambda row: row.error.rpartition(".")[2])
def test_each_row_names_an_exception_class_where_it_is_defined(row):
    cls = _resolved(row)
    assert f"{cls.__module__}.{cls.__qualname__}" == row.error


def test_the_rows_go_from_specific_to_general():
    classes = [_resolved(row) for row in ERROR_EXITS]
    for later, cls in enumerate(classes):
        hidden_by = [earlier for earlier in classes[:later] if issubclass(cls, earlier)]
        assert hidden_by == [], f"{cls.__name__} comes after {hidden_by[0].__name__}"


def test_every_error_predelinq_raises_has_an_exit_code():
    mapped = tuple(_resolved(row) for row in ERROR_EXITS)
    unmapped = [cls.__qualname__ for cls in _predelinq_errors() if not issubclass(cls, mapped)]
    assert unmapped == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("predelinq.modeling.registry.UnknownVersionError", ExitCode.DATABASE),
        ("predelinq.modeling.artifacts.ArtifactError", ExitCode.DATABASE),
        ("predelinq.retraining.lock.RetrainingBusyError", ExitCode.BUSY),
        ("predelinq.serving.score.NoChampionError", ExitCode.RETRAIN_FAILED),
        ("predelinq.features.export.CustomerIdsError", ExitCode.USAGE),
        ("predelinq.ingest.problems.IngestError", ExitCode.INPUT_REJECTED),
    ],
)
def test_the_readme_exit_codes(error, code):
    """README "Exit codes": an unknown version and a corrupt artifact are 3, and so on."""
    module, _, name = error.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    first = next(row for row in ERROR_EXITS if issubclass(cls, _resolved(row)))
    assert first.code == code


def test_exit_codes():
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "INPUT_REJECTED": 1,
        "USAGE": 2,
        "DATABASE": 3,
        "RETRAIN_FAILED": 4,
        "BUSY": 75,
    }
