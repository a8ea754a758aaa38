"""The training loss: cross-entropy on integer labels, with optional label smoothing."""

from __future__ import annotations

import keras
from keras import ops

from keras_alexnet.config import TrainConfig


@keras.saving.register_keras_serializable(package="keras_alexnet")
class SparseLabelSmoothingCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits against integer labels, with label smoothing.

    The target of an image of class `c` is `(1 − ε)·onehot(c) + ε / K` over the `K` classes
    (`keras.losses.CategoricalCrossentropy(label_smoothing=ε)`, which needs one-hot labels; this
    takes the integer labels the data pipelines give, as `SparseCategoricalCrossentropy` does).

    Args:
        label_smoothing: ε in [0, 1); 0 is plain cross-entropy.
        name: Loss name.
        **kwargs: Other `keras.losses.Loss` arguments (`reduction`, `dtype`).

    Example:

    >>> loss = SparseLabelSmoothingCrossentropy(label_smoothing=0.1)
    >>> round(float(loss(np.array([0]), np.array([[10.0, 0.0, 0.0]]))), 4)  # logits in
    0.6668
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    """

    def __init__(self, label_smoothing: float = 0.0,
                 name: str = "sparse_label_smoothing_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def build_loss(config: TrainConfig) -> keras.losses.Loss:
    """Cross-entropy of the logits; with label smoothing when `config.label_smoothing` > 0."""
    if config.label_smoothing:
        return SparseLabelSmoothingCrossentropy(config.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
