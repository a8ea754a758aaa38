"""`AlexNetBackbone`: the convolutional features, against TensorFlow's own ops on its weights;
its arguments (architecture only) and config; an old file of the whole network under its name."""

import inspect

import numpy as np
import pytest
import tensorflow as tf

from keras_alexnet.models.backbone import AlexNetBackbone
from keras_alexnet.models.image_classifier import AlexNetImageClassifier
from keras_alexnet.models.network import AlexNetNetwork

SMALL = dict(image_shape=(20, 20, 3), conv_filters=(8, 8, 12, 8, 8),
             conv_kernel_sizes=(3, 5, 3, 3, 1), conv_strides=(1, 2, 1, 1, 1),
             conv_pooling=(True, False, False, False, True), conv1_padding=2, pool_size=3,
             pool_strides=2)


def features_by_hand(backbone, images):
    """The small backbone's output computed with `tf.nn` ops on its weights."""
    weights = {w.path: w.numpy() for w in backbone.weights}
    x = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
    for index, name in enumerate(("conv1", "conv2", "conv3", "conv4", "conv5")):
        x = tf.nn.conv2d(x, weights[f"{name}/kernel"], SMALL["conv_strides"][index],
                         "VALID" if name == "conv1" else "SAME") + weights[f"{name}/bias"]
        x = tf.nn.relu(x)
        if SMALL["conv_pooling"][index]:
            x = tf.nn.max_pool2d(x, 3, 2, "VALID")
    return x.numpy()


def test_the_features_are_five_convolutions_computed_by_hand():
    backbone = AlexNetBackbone(**SMALL, seed=1)
    images = np.random.default_rng(0).normal(size=(3, 20, 20, 3)).astype("float32")
    np.testing.assert_allclose(backbone.predict(images, verbose=0),
                               features_by_hand(backbone, images), rtol=1e-5, atol=1e-5)


def test_the_backbone_takes_architecture_arguments_and_its_config_holds_them_all():
    taken = set(inspect.signature(AlexNetBackbone).parameters) - {"kwargs"}
    assert not taken & {"num_classes", "dropout", "mean", "std", "test_crop_fraction",
                        "dense_units"}
    backbone = AlexNetBackbone(**SMALL, batch_norm=True, seed=1)
    config = backbone.get_config()
    assert taken - set(config) == {"seed"}  # initial weights only: a loaded model has its own
    assert set(config) - taken == {"trainable"}  # Keras' own; nothing the constructor lacks
    rebuilt = AlexNetBackbone.from_config(config)
    assert rebuilt.get_config() == config
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in backbone.weights]


def test_the_seed_is_not_in_the_config_so_a_rebuild_draws_new_weights():
    backbone = AlexNetBackbone(**SMALL, seed=1)
    rebuilt = AlexNetBackbone.from_config(backbone.get_config())
    assert not np.array_equal(rebuilt.get_layer("conv1").kernel.numpy(),
                              backbone.get_layer("conv1").kernel.numpy())


def test_a_whole_networks_config_under_the_backbones_old_name_rebuilds_that_network():
    config = AlexNetNetwork(image_shape=(20, 20, 3), conv_filters=(8,) * 5, dense_units=8,
                            num_classes=3, seed=0).get_config()
    loaded = AlexNetBackbone.from_config(config)
    assert type(loaded) is AlexNetNetwork and loaded.output_shape == (None, 3)


def test_the_backbone_of_a_classifier_gives_its_features():
    classifier = AlexNetImageClassifier.from_arguments("cifar", width_multiplier=0.25,
                                                       dense_units=16, seed=0)
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    standardised = (images - np.float32(classifier.preprocessor.mean)) / np.float32(
        classifier.preprocessor.std)
    np.testing.assert_allclose(classifier.backbone.predict(standardised, verbose=0),
                               features_by_hand_cifar(classifier.backbone, standardised),
                               rtol=1e-4, atol=1e-4)


def features_by_hand_cifar(backbone, x):
    """The seed's features (conv1 3×3/2 padded 1, pools 2/2 after conv1, conv2, conv5) with
    `tf.nn` ops on `backbone`'s weights."""
    weights = {w.path: w.numpy() for w in backbone.weights}
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    for name, stride, pool in (("conv1", 2, True), ("conv2", 1, True), ("conv3", 1, False),
                               ("conv4", 1, False), ("conv5", 1, True)):
        x = tf.nn.relu(tf.nn.conv2d(x, weights[f"{name}/kernel"], stride,
                                    "VALID" if name == "conv1" else "SAME")
                       + weights[f"{name}/bias"])
        x = tf.nn.max_pool2d(x, 2, 2, "VALID") if pool else x
    return x.numpy()


@pytest.mark.parametrize("argument, value", [("conv_filters", (8,) * 4),
                                             ("conv_pooling", (True,) * 6)])
def test_a_stack_without_five_entries_is_refused(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must have 5 entries"):
        AlexNetBackbone(**{**SMALL, argument: value})


def test_the_heads_and_preprocessors_arguments_are_refused_naming_where_they_go():
    with pytest.raises(TypeError, match="not mean, num_classes: the head's are "
                                        "AlexNetImageClassifier's"):
        AlexNetBackbone(**SMALL, num_classes=10, mean=(0.0,) * 3)
