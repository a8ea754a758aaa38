"""`AlexNetBackbone`: its forward pass against TensorFlow's own ops on its weights, its config
and files, the networks as its arguments, and a third network that trains through `train()`
after one line in the catalogue."""

import inspect
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL, assert_holds_stored_weights, perturbed

from keras_alexnet.config import TrainConfig
from keras_alexnet.config.choices import NETWORK_CATALOGUE, Network
from keras_alexnet.errors import ConfigError
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.backbone import eval_resize_side
from keras_alexnet.models.build import load_preset
from keras_alexnet.models.catalogue import SHIPPED_DIR
from keras_alexnet.models.network import AlexNetNetwork as AlexNetBackbone
from keras_alexnet.models.paper_alexnet import PaperAlexNet
from keras_alexnet.training.fit_setup import network_arguments

# A small network unlike both shipped ones: 5×5 grouped conv2, LRN after conv3, stride 2 in
# conv2, pools 3/2 after conv1 and conv5, batch norm, dropout before fc7 only.
SMALL = dict(image_shape=(20, 20, 3), conv_filters=(8, 8, 12, 8, 8),
             conv_kernel_sizes=(3, 5, 3, 3, 1), conv_strides=(1, 2, 1, 1, 1),
             conv_groups=(1, 2, 1, 2, 1), conv_lrn=(False, False, True, False, False),
             conv_pooling=(True, False, False, False, True), conv1_padding=2, pool_size=3,
             pool_strides=2, batch_norm=True, dense_units=16, dropout=0.3,
             dropout_before=("fc7",), test_crop_fraction=0.5, num_classes=4, init="torch",
             mean=(100.0, 110.0, 120.0), std=(50.0, 60.0, 70.0), seed=3)


def by_hand(model, images):
    """The small network's logits computed with `tf.nn` ops on the model's weights."""
    weights = {w.path: w.numpy() for w in model.weights}
    x = (images.astype("float32") - np.float32(SMALL["mean"])) / np.float32(SMALL["std"])
    x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]])
    for index, name in enumerate(("conv1", "conv2", "conv3", "conv4", "conv5")):
        kernel, groups = weights[f"{name}/kernel"], SMALL["conv_groups"][index]
        stride = SMALL["conv_strides"][index]
        halves = zip(tf.split(x, groups, axis=-1), np.split(kernel, groups, axis=-1))
        x = tf.concat([tf.nn.conv2d(part, k, stride, "VALID" if index == 0 else "SAME")
                       for part, k in halves], axis=-1)
        bn = {key: weights[f"{name}_bn/{key}"]
              for key in ("gamma", "beta", "moving_mean", "moving_variance")}
        x = (x - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-5) * bn["gamma"]
        x = tf.nn.relu(x + bn["beta"])
        if SMALL["conv_lrn"][index]:
            x = tf.nn.local_response_normalization(x, 2, bias=2.0, alpha=1e-4, beta=0.75)
        if SMALL["conv_pooling"][index]:
            x = tf.nn.max_pool2d(x, 3, 2, "VALID")
    x = tf.reshape(x, (len(images), -1))
    for name in ("fc6", "fc7"):
        x = tf.nn.relu(x @ weights[f"{name}/kernel"] + weights[f"{name}/bias"])
    return (x @ weights["fc8/kernel"] + weights["fc8/bias"]).numpy()


def test_the_backbone_computes_what_its_arguments_say():
    model = AlexNetBackbone(**SMALL)
    for layer in model.layers:  # batch-norm statistics away from 0 and 1, so that they count
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape))
    images = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 3)).astype("uint8")
    np.testing.assert_allclose(model.predict(images, verbose=0), by_hand(model, images),
                               rtol=1e-4, atol=1e-4)
    names = [layer.name for layer in model.layers]
    assert names.index("fc6") < names.index("fc7_dropout") < names.index("fc7")
    assert "fc6_dropout" not in names and "fc8_dropout" not in names


def test_get_config_holds_every_argument_and_a_keras_file_round_trips(tmp_path):
    model = perturbed(AlexNetBackbone(**SMALL))
    config = model.get_config()
    for name in inspect.signature(AlexNetBackbone).parameters:
        if name in SMALL:
            expected = SMALL[name]
            assert config[name] == (list(expected) if isinstance(expected, tuple) else expected)
    json.dumps(config)  # plain JSON, as a preset's config.json
    path = str(tmp_path / "small.keras")
    model.save(path)
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 20, 3)).astype("uint8")
    loaded = keras.saving.load_model(path)
    assert type(loaded) is AlexNetBackbone
    np.testing.assert_array_equal(loaded.predict(images, verbose=0),
                                  model.predict(images, verbose=0))


@pytest.mark.parametrize("argument, value, message", [
    ("conv_filters", (8, 8, 8, 8), "conv_filters must have 5 entries"),
    ("dropout_before", ("fc9",), "dropout_before names fc9"),
    ("test_crop_fraction", 1.5, "test_crop_fraction must be in"),
])
def test_arguments_out_of_range_are_refused(argument, value, message):
    with pytest.raises(ValueError, match=message):
        AlexNetBackbone(**{**SMALL, argument: value})


def test_each_network_asks_the_backbone_for_its_architecture():
    """AlexNet and PaperAlexNet are the backbone with the seed's and the paper's arguments:
    the same layers, weights and logits as the backbone built from those arguments."""
    paper = PaperAlexNet(num_classes=5, input_shape=(96, 96, 3), seed=2)
    same = AlexNetBackbone(image_shape=(96, 96, 3), conv_filters=(96, 256, 384, 384, 256),
                           conv_kernel_sizes=(11, 5, 3, 3, 3), conv_strides=(4, 1, 1, 1, 1),
                           conv_groups=(1, 2, 1, 2, 2), conv_lrn=(True, True, False, False, False),
                           conv1_padding=2, pool_size=3, dropout_before=("fc7", "fc8"),
                           num_classes=5, init="paper", mean=paper.mean, std=paper.std, seed=2)
    cifar = AlexNet(seed=2, **TINY_MODEL)
    seed_args = AlexNetBackbone(conv_filters=(16, 48, 96, 64, 64), dense_units=64,
                                mean=cifar.mean, std=cifar.std, seed=2)
    for network, backbone in ((paper, same), (cifar, seed_args)):
        assert isinstance(network, AlexNetBackbone)
        assert [w.path for w in network.weights] == [w.path for w in backbone.weights]
        images = np.random.default_rng(0).integers(0, 256, (2, *network.image_shape), np.uint8)
        np.testing.assert_array_equal(network.predict(images, verbose=0),
                                      backbone.predict(images, verbose=0))


def test_the_test_view_is_the_models_own():
    assert eval_resize_side(PaperAlexNet(input_shape=(112, 112, 3), seed=0)) == 128  # 112 / 0.875
    assert eval_resize_side(AlexNetBackbone(**SMALL)) == 40
    assert eval_resize_side(AlexNet(seed=0, **TINY_MODEL)) is None
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    assert eval_resize_side(plain) is None


def test_the_backbone_loads_any_networks_preset():
    loaded = AlexNetBackbone.from_preset("alexnet_fast_cifar10")
    assert type(loaded) is AlexNet and loaded.width_multiplier == 0.5
    assert_holds_stored_weights(loaded, os.path.join(SHIPPED_DIR, "alexnet_fast_cifar10",
                                                     "model.weights.h5"))
    assert sorted(AlexNetBackbone.presets) == ["alexnet_fast_cifar10", "alexnet_long_cifar10"]
    assert type(load_preset("alexnet_long_cifar10")).__name__ == "AlexNetImageClassifier"


def test_a_network_gets_the_config_fields_its_constructor_takes(cifar_dir):
    from keras_alexnet.data.image_sets import load_run_data

    config = TrainConfig(data_dir=cifar_dir, train_subset=64, validation_size=100, seed=4,
                         dropout=0.2, conv1_stride=1, width_multiplier=0.25, dense_units=64)
    data = load_run_data(config)
    cifar = network_arguments(config, data)
    assert cifar == {"init": "torch", "dropout": 0.2, "seed": 4, "conv1_stride": 1,
                     "batch_norm": False, "width_multiplier": 0.25, "dense_units": 64,
                     "num_classes": 10, "mean": data.stats.mean, "std": data.stats.std}
    paper = network_arguments(TrainConfig.from_recipe("paper", seed=4), data)
    assert paper == {"init": "paper", "dropout": 0.5, "seed": 4, "num_classes": 10,
                     "mean": data.stats.mean, "std": data.stats.std}


@keras.saving.register_keras_serializable(package="backbone_test")
class ThirdAlexNet(AlexNetBackbone):
    """A third network: the backbone with arguments of its own (5×5 conv1, no pool after
    conv2), taking what a run gives it."""

    def __init__(self, num_classes=10, mean=(0.0,) * 3, std=(1.0,) * 3, seed=None, dropout=0.5,
                 name="third", **kwargs):
        super().__init__(conv_filters=(16, 16, 32, 32, 16), conv_kernel_sizes=(5, 3, 3, 3, 3),
                         conv_strides=(1, 1, 1, 1, 1), conv_pooling=(True, False, True, False,
                                                                     True),
                         conv1_padding=2, dense_units=32, num_classes=num_classes, mean=mean,
                         std=std, seed=seed, dropout=dropout, name=name, **kwargs)

    def get_config(self):
        return {**keras.Model.get_config(self), "num_classes": self.num_classes,
                "mean": self.mean, "std": self.std, "seed": self.seed, "dropout": self.dropout}


def test_a_third_network_trains_after_one_line_in_the_catalogue(monkeypatch, cifar_dir,
                                                                tmp_path):
    import keras_alexnet

    monkeypatch.setitem(NETWORK_CATALOGUE, "third",
                        Network(f"{__name__}.ThirdAlexNet", streams_images=False))
    result = keras_alexnet.train(network="third", data_dir=cifar_dir, epochs=1, train_subset=64,
                                 validation_size=100, batch_size=32, output_dir=str(tmp_path),
                                 export=False, figures=False, verbose=0)
    assert type(result.model) is ThirdAlexNet
    assert result.model.get_layer("conv1").kernel.shape == (5, 5, 3, 16)
    cifar = keras_alexnet.load_cifar10(cifar_dir)
    logits = result.model.predict(cifar.x_test, verbose=0)
    assert result.metrics["test_accuracy"] == pytest.approx(
        np.mean(logits.argmax(1) == cifar.y_test))
    monkeypatch.delitem(NETWORK_CATALOGUE, "third")
    with pytest.raises(ConfigError, match="TrainConfig.network must be one of cifar, paper"):
        TrainConfig(network="third")
