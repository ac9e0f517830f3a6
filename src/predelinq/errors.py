"""The one base of every error predelinq raises on purpose.

Each failure a caller handles differently is its own subclass (a rejected file, an unknown
version, a corrupt artifact...), defined beside the code that raises it, or here when several
packages raise it. The entry points map them once each: the CLI to exit codes
(``cli/common.py``), the API to HTTP statuses (``api/errors.py``). Anything else reaching an
entry point is a bug, and shows as one. ``tests/test_errors.py`` checks that every exception
class in the package derives from ``PredelinqError``.
"""


class PredelinqError(Exception):
    """Base of predelinq's own errors."""


class TrainingError(PredelinqError):
    """The data cannot train a model: too few labels, one class only, a fold without both."""


class RegistryError(PredelinqError):
    """The model registry refuses: an unknown version, nothing to roll back to, or an
    artifact that cannot be used or written (see ``predelinq.modeling``)."""
