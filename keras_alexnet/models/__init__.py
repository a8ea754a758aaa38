"""The networks: `AlexNetBackbone`, which builds every one, the seed's CIFAR-10 `AlexNet` and the
paper's `PaperAlexNet` as its arguments, their layers and initializers, and `build_model()` to
pick one by name."""
