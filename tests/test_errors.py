"""One error base: every exception class predelinq defines derives from
``predelinq.errors.PredelinqError``, so an entry point can tell our errors (mapped to an exit
code or an HTTP status, shown as one line) from bugs. The package is walked and every module
imported, so a new module is checked without being listed here."""

from __future__ import annotations

from predelinq.errors import PredelinqError
from support.package import exception_classes


def test_every_exception_class_derives_from_predelinq_error():
    classes = exception_classes()
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
