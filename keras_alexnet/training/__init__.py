"""Training a recipe: `train()` and the run it makes (its directory, callbacks, checkpoints and
backups, stop on signals), the optimizer and loss, and the devices, precision and compilation it
runs with."""
