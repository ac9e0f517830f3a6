"""Shared test builders: imported by test modules, never the other way round."""
