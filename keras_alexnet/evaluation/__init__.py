"""Testing a model: `evaluate()`, the metrics, test-time augmentation (flip, ten crops) and the
safe loading of `.keras` files."""
