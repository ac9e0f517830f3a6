"""Models: splitting rows, fitting, metrics, boosters, the versioned registry."""
