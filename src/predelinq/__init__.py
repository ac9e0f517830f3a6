"""predelinq: pre-delinquency risk engine with automatic, safe model retraining."""

import os
from importlib.metadata import PackageNotFoundError, version

# XGBoost's OpenMP threads spin while they wait by default; on a small machine shared with
# other work that made training 10-50x slower (measured on 2 cores). Sleep instead, unless
# the operator chose otherwise. Must be set before xgboost loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("predelinq")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
