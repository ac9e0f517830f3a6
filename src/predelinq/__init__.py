"""predelinq: pre-delinquency risk engine with automatic, safe model retraining."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("predelinq")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
