"""The ``predelinq`` command."""
