"""The networks as keras-hub arranges them: `AlexNetBackbone` (the convolutional features),
`AlexNetImageClassifierPreprocessor` (pixel statistics, test view) and `AlexNetImageClassifier`
(the task), with the package's networks as their argument sets (`seed_network`,
`paper_network`); the deprecated one-model `AlexNet` and `PaperAlexNet` still import. Names
load on first use, so `keras_alexnet.models.catalogue` imports without Keras."""

from keras_alexnet.utils.lazy_names import lazy_names

_NAMES = {
    "AlexNetBackbone": "keras_alexnet.models.backbone",
    "AlexNetImageClassifier": "keras_alexnet.models.image_classifier",
    "AlexNetImageClassifierPreprocessor": "keras_alexnet.models.preprocessor",
    "ArgumentSet": "keras_alexnet.models.architectures",
    "seed_network": "keras_alexnet.models.architectures",
    "paper_network": "keras_alexnet.models.architectures",
    # deprecated: the one-model networks
    "AlexNet": "keras_alexnet.models.alexnet",
    "PaperAlexNet": "keras_alexnet.models.paper_alexnet",
}
__all__ = ["AlexNetBackbone", "AlexNetImageClassifier", "AlexNetImageClassifierPreprocessor",
           "ArgumentSet", "paper_network", "seed_network"]
__getattr__, __dir__ = lazy_names(__name__, _NAMES, __all__)
