"""The networks: the seed's CIFAR-10 `AlexNet`, the paper's `PaperAlexNet`, their layers and
initializers, and `build_model()` to pick one by name."""
