"""`AlexNetImageClassifier`: the image-classification task — a preprocessor, an `AlexNetBackbone`
and AlexNet's head (fc6, fc7, fc8 with dropout) in one model that takes raw pixels, compiled with
the seed recipe's defaults."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import keras
import numpy as np

from keras_alexnet.config import TrainConfig
from keras_alexnet.errors import ImageError
from keras_alexnet.models.architectures import ArgumentSet, architecture
from keras_alexnet.models.backbone import AlexNetBackbone
from keras_alexnet.models.initializers import LayerInitializers
from keras_alexnet.models.layers import DENSE_NAMES, DENSE_UNITS, check_head, classifier_head
from keras_alexnet.models.model_files import registered_class
from keras_alexnet.models.preprocessor import AlexNetImageClassifierPreprocessor
from keras_alexnet.models.preset_mapping import TaskPresets


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNetImageClassifier(TaskPresets, keras.Model):
    """AlexNet for image classification: raw 0–255 pixels → `preprocessor` → `backbone` →
    flatten → fc6 → fc7 → fc8 logits (float32 also under mixed precision).

    As keras-hub's `ImageClassifier`: `from_preset` loads a trained one, `compile()` (called on
    construction) sets the seed recipe's optimizer, loss and accuracy so that `fit` trains it on
    a `tf.data` set of `(uint8 images, labels)`, and `predict` takes raw images (of any size:
    `predict` brings others to the input by the preprocessor's test view). `from_arguments`
    builds the package's networks by name (`"cifar"`: the seed's, `"paper"`: the 2012 paper's).

    Args:
        backbone: The `AlexNetBackbone` (features).
        preprocessor: The `AlexNetImageClassifierPreprocessor` (pixel statistics, test view).
        num_classes: Number of output logits.
        dense_units: Width of fc6 and fc7.
        dropout: Dropout rate.
        dropout_before: The dense layers (`"fc6"`, `"fc7"`, `"fc8"`) dropout comes before.
        init: `"torch"` or `"paper"` initialisation of the head.
        seed: Seed of the head's initial weights only, not kept in the config; `None` draws from
            NumPy's global generator (`keras.utils.set_random_seed`).
        name: Model name.
        dtype: The dtype policy of the head (and, from a config, the backbone's); `None`:
            Keras' global policy.

    Example:

    >>> classifier = AlexNetImageClassifier.from_arguments("cifar", width_multiplier=0.25,
    ...                                                    dense_units=64, seed=0)
    >>> classifier.predict(np.zeros((2, 32, 32, 3), "uint8"), verbose=0).shape
    (2, 10)
    """

    def __init__(self, backbone: AlexNetBackbone,
                 preprocessor: AlexNetImageClassifierPreprocessor, num_classes: int = 10,
                 dense_units: int = DENSE_UNITS, dropout: float = 0.5,
                 dropout_before: Sequence[str] = DENSE_NAMES, init: str = "torch",
                 seed: Optional[int] = None, name: str = "alexnet_image_classifier", dtype=None,
                 **kwargs):
        check_head(num_classes, dropout, dense_units, dropout_before)
        images = keras.Input(shape=preprocessor.image_shape, name="images")
        logits = classifier_head(backbone(preprocessor(images)), num_classes, dense_units,
                                 dropout, dropout_before, LayerInitializers(init, seed), dtype)
        super().__init__(inputs=images, outputs=logits, name=name, dtype=dtype, **kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.num_classes = num_classes
        self._head = {"num_classes": num_classes, "dense_units": int(dense_units),
                      "dropout": float(dropout), "dropout_before": list(dropout_before),
                      "init": init}
        self.compile()

    @classmethod
    def from_arguments(cls, arguments: Union[str, ArgumentSet] = "cifar",
                       seed: Optional[int] = None, dtype=None, name: Optional[str] = None,
                       **network_arguments) -> AlexNetImageClassifier:
        """A new classifier of a named network (`"cifar"`: `architectures.seed_network`,
        `"paper"`: `architectures.paper_network`, with their `network_arguments`) or of an
        `ArgumentSet`; `seed` seeds the initial weights; `name` is the model's.

        Example:

        >>> AlexNetImageClassifier.from_arguments("cifar", seed=0).count_params()
        23272266
        """
        if isinstance(arguments, str):
            arguments = architecture(arguments)(**network_arguments)
        elif network_arguments:
            raise TypeError("network arguments go with a network's name, not an ArgumentSet")
        backbone = AlexNetBackbone(**arguments.backbone, seed=seed, dtype=dtype)
        preprocessor = AlexNetImageClassifierPreprocessor(**arguments.preprocessor)
        return cls(backbone, preprocessor, **arguments.head, seed=seed, dtype=dtype,
                   **({"name": name} if name else {}))

    def compile(self, optimizer: Any = "auto", loss: Any = "auto", *, metrics: Any = "auto",
                **kwargs) -> None:
        """Keras' `compile`, where `"auto"` is the seed recipe's choice (`TrainConfig()`): its
        SGD (momentum, Nesterov, coupled weight decay) at its learning rate held constant, its
        loss (label smoothing if any) and accuracy."""
        recipe = TrainConfig()
        if optimizer == "auto":
            optimizer = registered_class("TorchSGD")(
                learning_rate=recipe.learning_rate, momentum=recipe.momentum,
                coupled_weight_decay=recipe.weight_decay, global_clipnorm=recipe.global_clipnorm,
                nesterov=recipe.nesterov)
        if loss == "auto":
            loss = (registered_class("SparseLabelSmoothingCrossentropy")(recipe.label_smoothing)
                    if recipe.label_smoothing
                    else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        super().compile(optimizer=optimizer, loss=loss,
                        metrics=["accuracy"] if metrics == "auto" else metrics, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Compiles as the saved model was (Keras' own, which skips an overridden `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def predict(self, x, *args, **kwargs):
        """Keras' `predict` on raw images: an array or tensor of another size than the input is
        brought to it by the preprocessor's `test_view` first, no images give no rows, and a
        `tf.data` set is taken as it is.

        Raises:
            ImageError: An array or tensor that is not a batch of images of the input's
                channels.
        """
        if hasattr(x, "shape"):  # an array or a tensor (a tf.data set has none)
            x = np.asarray(keras.ops.convert_to_numpy(x))
            channels = self.preprocessor.image_shape[-1]
            if x.ndim != 4 or x.shape[-1] != channels or x.dtype.kind not in "uif":
                raise ImageError(f"predict takes images as an array of shape (images, height, "
                                 f"width, {channels}) of numbers, got {x.shape} of {x.dtype}")
            if not len(x):
                return np.zeros((0, self.num_classes), "float32")
            if x.shape[1:3] != tuple(self.preprocessor.image_shape[:2]):
                x = self.preprocessor.test_view(x)
        return super().predict(x, *args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**keras.Model.get_config(self),
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
                **self._head}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AlexNetImageClassifier:
        config = dict(config)
        backbone = dict(config.pop("backbone"))
        if config.get("dtype") is not None:  # the task computes in one policy
            backbone["config"] = {**backbone["config"], "dtype": config["dtype"]}
        return cls(backbone=keras.saving.deserialize_keras_object(backbone),
                   preprocessor=keras.saving.deserialize_keras_object(config.pop("preprocessor")),
                   **config)
