import dataclasses

import pytest

from keras_alexnet import ConfigError, TrainConfig
from keras_alexnet.config import RECIPES


def test_defaults_are_the_seed_recipe():
    config = TrainConfig()
    assert (config.epochs, config.batch_size) == (49, 128)
    assert (config.learning_rate, config.momentum) == (0.01, 0.9)
    assert (config.weight_decay, config.lr_decay_epoch, config.lr_decay_factor) == (5e-4, 30, 0.1)
    assert (config.global_clipnorm, config.validation_size) == (2.0, 10_000)
    assert (config.pad, config.pca_stddev) == (4, 0.1)
    assert (config.seed, config.init, config.dropout) == (0, "torch", 0.5)
    assert config.data_dir is None and config.train_subset is None


@pytest.mark.parametrize("field, value", [
    ("epochs", -1), ("epochs", 0), ("batch_size", 0), ("learning_rate", 0.0), ("momentum", 1.0),
    ("weight_decay", -1e-4), ("lr_decay_factor", 0.0), ("global_clipnorm", -2.0),
    ("validation_size", 0), ("pad", -1), ("pca_stddev", -0.1),
    ("init", "xavier"), ("dropout", 1.0), ("train_subset", 0), ("model_name", "a/b"),
    ("verbose", 3),
])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"TrainConfig.{field} "):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field, value", [
    ("epochs", "5"), ("epochs", 2.5), ("epochs", True), ("learning_rate", "fast"),
    ("data_dir", 3), ("export", "yes"), ("train_subset", 1.5),
])
def test_wrong_types_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"TrainConfig.{field} must be"):
        TrainConfig(**{field: value})


def test_ints_are_accepted_for_floats_and_none_for_optionals():
    config = TrainConfig(learning_rate=1, global_clipnorm=None, train_subset=None)
    assert config.learning_rate == 1 and config.global_clipnorm is None


def test_unknown_keys_are_rejected_by_name():
    with pytest.raises(ConfigError, match="unknown TrainConfig field.*: epoch, lr"):
        TrainConfig.from_dict({"epoch": 3, "lr": 0.1})
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig().replace(lr=0.1)


def test_replace_validates_and_keeps_other_fields():
    config = TrainConfig().replace(epochs=3, train_subset=512)
    assert (config.epochs, config.train_subset, config.batch_size) == (3, 512, 128)
    with pytest.raises(ConfigError, match="TrainConfig.epochs"):
        config.replace(epochs=-3)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_config_is_immutable_and_replace_makes_a_validated_copy():
    """No field of a config can be set after it was validated; `replace` leaves the original as
    it was and validates the copy."""
    config = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, field.name, getattr(config, field.name))
    copy = config.replace(epochs=3, global_clipnorm=None)
    assert (copy.epochs, copy.global_clipnorm) == (3, None)
    assert config == TrainConfig() and (config.epochs, config.global_clipnorm) == (49, 2.0)
    with pytest.raises(ConfigError, match="TrainConfig.epochs must be >= 1"):
        config.replace(epochs=0)
    assert config.epochs == 49


def test_the_seed_recipe_is_the_default_config():
    from keras_alexnet import recipes

    assert TrainConfig.from_recipe("seed") == TrainConfig()
    assert set(recipes()) >= {"seed", "tweaked", "long"}
    assert all(isinstance(text, str) and text for text in recipes().values())


def test_tweaked_and_long_recipes_are_alexnets_with_the_recipes_values():
    tweaked = TrainConfig.from_recipe("tweaked")
    assert (tweaked.conv1_stride, tweaked.batch_norm, tweaked.nesterov) == (1, True, True)
    assert (tweaked.lr_schedule, tweaked.learning_rate) == ("cosine", 0.05)
    assert (tweaked.warmup_epochs, tweaked.label_smoothing) == (2.0, 0.1)
    assert (tweaked.test_time_augmentation, tweaked.epochs) == ("flip", 20)
    assert (tweaked.dropout, tweaked.global_clipnorm, tweaked.cutout) == (0.25, None, 0)
    assert tweaked.batch_size == 128 and tweaked.pad == 4 and tweaked.pca_stddev == 0.1
    long = TrainConfig.from_recipe("long")
    assert long.cutout > 0 and 20 < long.epochs <= 100 and long.conv1_stride == 1


def test_the_paper_recipe_is_the_papers_network_and_recipe():
    paper = TrainConfig.from_recipe("paper")
    assert (paper.network, paper.init, paper.dataset) == ("paper", "paper", "cifar10")
    assert (paper.learning_rate, paper.momentum, paper.weight_decay) == (0.01, 0.9, 5e-4)
    assert (paper.batch_size, paper.epochs, paper.dropout) == (128, 90, 0.5)
    assert (paper.lr_schedule, paper.lr_decay_factor) == ("plateau", 0.1)
    assert (paper.test_time_augmentation, paper.global_clipnorm) == ("ten_crop", None)
    assert paper.model_name == "alexnet_paper" and paper.pca_stddev == 0.1


@pytest.mark.parametrize("values, message", [
    ({"dataset": "imagenet2012"}, "TrainConfig.dataset 'imagenet2012' needs network='paper'"),
    ({"network": "paper", "batch_norm": True}, "TrainConfig.batch_norm applies to the CIFAR"),
    ({"network": "paper", "cutout": 8}, "TrainConfig.cutout applies to the CIFAR"),
    ({"network": "paper", "augmentation": "device"}, "streams its images"),
    ({"validation_size": 50_000}, "below CIFAR-10's 50000 training images"),
    ({"network": "resnet"}, "TrainConfig.network must be one of cifar, paper"),
    ({"lr_patience": -1}, "TrainConfig.lr_patience must be >= 0"),
])
def test_the_network_and_the_data_set_go_together(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values)
    assert TrainConfig(network="paper", dataset="imagenet2012", validation_size=50_000)


def test_the_fast_recipe_is_a_narrow_alexnet_in_big_measured_precision_steps_on_a_one_cycle():
    fast = TrainConfig.from_recipe("fast")
    assert (fast.conv1_stride, fast.batch_norm, fast.width_multiplier, fast.dense_units) == (
        1, True, 0.5, 512)
    # The precision is measured on the host (`host_probe`): no recipe fixes one.
    assert (fast.batch_size, fast.mixed_precision, fast.epochs) == (512, "auto", 6)
    assert {TrainConfig.from_recipe(name).mixed_precision for name in RECIPES} == {"auto"}
    assert (fast.lr_schedule, fast.learning_rate, fast.warmup_epochs) == ("linear", 0.2, 1.2)
    assert (fast.nesterov, fast.label_smoothing, fast.dropout, fast.global_clipnorm) == (
        True, 0.2, 0.1, None)
    assert (fast.pca_stddev, fast.pad, fast.validation_size) == (0.0, 4, 2000)
    assert fast.test_time_augmentation == "flip" and not fast.linear_lr_scaling
    # More epochs stretch the whole schedule: the warm-up keeps its fifth of the run.
    assert TrainConfig.from_recipe("fast", epochs=18).warmup_epochs == pytest.approx(3.6)


def test_recipe_overrides_and_unknown_recipes():
    config = TrainConfig.from_recipe("tweaked", epochs=5, batch_norm=False)
    assert (config.epochs, config.batch_norm, config.nesterov) == (5, False, True)
    with pytest.raises(ConfigError,
                       match="unknown recipe 'fastest'; the recipes are seed, tweaked, long, fast"):
        TrainConfig.from_recipe("fastest")
    with pytest.raises(ConfigError, match="TrainConfig.warmup_epochs must be in"):
        TrainConfig.from_recipe("tweaked", epochs=2, warmup_epochs=2.0)


@pytest.mark.parametrize("recipe, epochs, warmup, share", [
    ("tweaked", 1, 0.1, "2 of its 20"), ("tweaked", 5, 0.5, "2 of its 20"),
    ("long", 20, 0.6, "1.2 of its 40"), ("tweaked", 20, 2.0, None), ("long", 40, 1.2, None),
])
def test_overriding_a_recipes_epochs_keeps_its_warm_up_share(recipe, epochs, warmup, share,
                                                             caplog):
    caplog.set_level("INFO", logger="keras_alexnet")
    config = TrainConfig.from_recipe(recipe, epochs=epochs)
    assert config.warmup_epochs == pytest.approx(warmup)
    assert caplog.messages == ([] if share is None else [
        f"warmup_epochs={warmup:g}, the {recipe} recipe's share of the run ({share} epochs)"])
    caplog.clear()
    kept = TrainConfig.from_recipe(recipe, epochs=epochs, warmup_epochs=0.0)
    assert kept.warmup_epochs == 0.0 and caplog.messages == []


@pytest.mark.parametrize("field, value", [
    ("conv1_stride", 3), ("lr_schedule", "triangle"), ("label_smoothing", 1.0), ("cutout", -1),
    ("test_time_augmentation", "rotate"), ("warmup_epochs", -1.0), ("width_multiplier", 0.0),
    ("dense_units", 0), ("cpu_threads", -2),
])
def test_new_fields_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"TrainConfig.{field} "):
        TrainConfig(**{field: value})


def test_tensorboard_without_its_package_is_refused_before_the_run(monkeypatch):
    """TensorFlow 2.21 no longer installs TensorBoard: `tensorboard=True` then fails in one
    line naming the package, not midway through the first epoch."""
    import importlib.util

    from keras_alexnet.config import check_packages

    check_packages(TrainConfig(tensorboard=True))  # installed here (the test extra)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "tensorboard" else find_spec(name))
    check_packages(TrainConfig(tensorboard=False))
    with pytest.raises(ConfigError, match="tensorboard needs TensorBoard: pip install tensorboard"):
        check_packages(TrainConfig(tensorboard=True))


def test_the_old_preset_spellings_still_work_with_one_warning_naming_the_new():
    import keras_alexnet

    with pytest.warns(FutureWarning, match=r"TrainConfig.from_preset is deprecated: use "
                                           r"TrainConfig.from_recipe") as caught:
        config = TrainConfig.from_preset("tweaked", epochs=5)
    assert len(caught) == 1 and config == TrainConfig.from_recipe("tweaked", epochs=5)
    with pytest.warns(FutureWarning, match=r"keras_alexnet.presets\(\) is deprecated: use "
                                           r"keras_alexnet.recipes\(\)"):
        assert keras_alexnet.presets() == keras_alexnet.recipes()


def test_the_docstring_lists_every_field_with_the_help_written_beside_it():
    doc = " ".join(TrainConfig.__doc__.split())
    assert doc.index("Args: epochs: Number of passes over the training split.") < doc.index(
        "Example:")
    assert ("global_clipnorm: Maximum global L2 norm of the loss gradient; `None` disables "
            "clipping.") in doc
    for field in dataclasses.fields(TrainConfig):
        assert f"{field.name}: {' '.join(field.metadata['help'].split())}" in doc, field.name
