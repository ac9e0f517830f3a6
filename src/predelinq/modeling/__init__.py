"""Models: splitting rows, fitting, metrics, boosters, artifacts on disk, the versioned
registry (``ModelVersion``, ``load_champion``)."""
