"""Serving the champion: the hot-reloading cache, the micro-batcher, scoring."""
