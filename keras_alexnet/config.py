"""`TrainConfig`: the one place every hyperparameter lives. Its defaults are the seed's recipe."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import types
import typing
import warnings
from typing import Any, Optional, Union

from keras_alexnet.errors import ConfigError

logger = logging.getLogger(__name__)

INITS = ("torch", "paper")
NETWORKS = ("cifar", "paper")
CIFAR10 = "cifar10"  # the default data set, held in memory as the seed's recipe needs
DISTRIBUTIONS = ("auto", "mirrored", "tpu", "multi_host", "none")
# What `keras.distribution.initialize` reads: a multi-host run's processes (`training.multi_host`).
JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
JOIN_SECONDS = 45  # how long a process waits for the others to join (JAX's default: 300)
HEARTBEAT_SECONDS = 30  # a process silent this long (hung, stopped) ends the run (JAX's: 100)
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = ("auto", True, False)  # Keras' `jit_compile` values
AUGMENTATION_PLACES = ("auto", "pipeline", "device")
LR_SCHEDULES = ("step", "cosine", "linear", "plateau")
TEST_TIME_AUGMENTATIONS = ("none", "flip", "ten_crop")
PLATEAU_MAX_DROPS = 3  # the paper divided its learning rate by 10 three times
MAX_TEN_CROP_PAD = 16  # the ten crops' padding: corners at most half an image off
REFERENCE_BATCH_SIZE = 128  # the seed's batch, which its learning rate belongs to
# The fields a resumed run may change: where files go and what is printed, not what is trained.
RUN_ONLY_FIELDS = frozenset({
    "data_dir", "output_dir", "saved_models_dir", "model_name", "export", "tensorboard", "verbose",
    "compilation_cache_dir", "figures", "checkpoint_every", "eval_batch_size", "cpu_threads",
    "overwrite"})
DEFAULT_COMPILATION_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "keras_alexnet", "jax")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and paths of one training run.

    The defaults reproduce the seed blog's recipe: AlexNet adapted to CIFAR-10, 40,000/10,000
    train/validation split, pad-4 random crop + horizontal flip + PCA colour jitter, SGD with
    momentum and coupled L2 weight decay (as PyTorch's `torch.optim.SGD`), LR ×0.1 after epoch 30,
    global gradient-norm clipping at 2.0, batch 128, 49 epochs, PyTorch's default initialisation.

    Args:
        epochs: Number of passes over the training split.
        batch_size: Images per training step.
        eval_batch_size: Images per validation and test batch (inference only, so the results
            are those of any other batch size; bigger batches run faster, and 10,000 images at
            1,000 make no partial batch to compile a second program for).
        learning_rate: Initial SGD learning rate.
        momentum: SGD momentum (PyTorch form: `buf = momentum * buf + g`).
        weight_decay: Coupled L2 coefficient added to the gradient (`g + weight_decay * w`).
        lr_decay_epoch: Number of epochs trained at `learning_rate`; later epochs use
            `learning_rate * lr_decay_factor`.
        lr_decay_factor: Factor applied to the learning rate after `lr_decay_epoch`.
        lr_schedule: `"step"` (the seed: `learning_rate`, times `lr_decay_factor` after
            `lr_decay_epoch`, set per epoch), `"plateau"` (the paper: times `lr_decay_factor`
            when the validation accuracy has not improved for `lr_patience` epochs, at most
            three times; `keras.callbacks.ReduceLROnPlateau`), `"cosine"` (per step: a linear
            warm-up from 0 to `learning_rate` over `warmup_epochs`, then a cosine decay to 0 at
            the last step) or `"linear"` (per step: the same warm-up, then a straight line to 0
            at the last step; a triangular, one-cycle schedule).
        lr_patience: Epochs without a better validation accuracy before the `"plateau"`
            schedule lowers the learning rate.
        warmup_epochs: Epochs of linear warm-up of the `"cosine"` and `"linear"` schedules.
        nesterov: Nesterov momentum (PyTorch's `nesterov=True` form).
        label_smoothing: Weight ε of the uniform distribution mixed into the one-hot targets.
        global_clipnorm: Maximum global L2 norm of the loss gradient; `None` disables clipping.
        validation_size: Training images held out for validation (of CIFAR-10's 50,000; of
            another data set's training split when it has no validation split of its own; a
            folder holds out as many again as its test images).
        pad: Zero padding (pixels per side) before the random crop back to 32×32 (the CIFAR
            network's augmentation, and its ten test crops).
        pca_stddev: Standard deviation σ of the PCA colour jitter coefficients α.
        seed: Seed of the train/validation split, the initialisation, shuffling and augmentation.
        network: `"cifar"` (the seed's CIFAR-10 AlexNet, `AlexNet`) or `"paper"` (the 2012
            paper's network for 224×224 crops of images resized to 256 on the shorter side,
            `PaperAlexNet`, with its two-GPU groups and local response normalisation; trained
            on streamed images: `data.image_sets`).
        dataset: `"cifar10"`, any tensorflow-datasets image-classification name
            (`"imagenet2012"`, `"imagenette/320px-v2"`, …; `data_dir` is then tfds' data
            directory), or a directory of class sub-folders of PNG, JPEG or BMP files (the
            `keras.utils.image_dataset_from_directory` layout). Other data sets than CIFAR-10
            need `network="paper"`.
        init: Weight initialisation, `"torch"` (PyTorch defaults, as the seed) or `"paper"`.
        dropout: Dropout rate before fc6, fc7 and fc8 (the paper's network: after fc6 and fc7).
        conv1_stride: Stride of conv1: 2 (the seed) or 1 (conv3–conv5 see 8×8 maps, not 4×4;
            about 3× the compute).
        batch_norm: Batch normalisation between each convolution and its ReLU.
        width_multiplier: Factor on the five convolutions' filter counts (64, 192, 384, 256,
            256), each rounded to a multiple of 16; 0.5 is half as wide (about ¼ of the
            convolutions' compute).
        dense_units: Width of fc6 and fc7 (the seed: 4096).
        cutout: Side of the square each training image has blanked (filled with the mean pixel)
            at a random centre, after crop and flip (Cutout); 0 is off.
        test_time_augmentation: `"none"`; `"flip"`: the test predictions average the class
            probabilities of each image and its mirror image; `"ten_crop"`: of the paper's ten
            patches (four corners and the centre, and their mirror images; for the CIFAR
            network 32×32 crops of the image padded by `pad`).
        data_dir: A local CIFAR-10 copy (`cifar-10-batches-py` directory or
            `cifar-10-python.tar.gz`). `None` uses `$KERAS_ALEXNET_DATA` if set, else
            tensorflow-datasets. For another tfds `dataset`: tfds' data directory.
        output_dir: The run directory: checkpoint, `history.csv`, `metrics.json`, backups.
        saved_models_dir: Base directory of exported SavedModels (TF Serving layout).
        model_name: Name of the exported model: `saved_models_dir/model_name/<version>/`.
        export: Whether `train()` exports a SavedModel after testing.
        overwrite: Start afresh in an `output_dir` that holds a run, removing its files;
            without it, a run of another config there (finished or interrupted) is refused,
            and one of the same config is continued from its backup or trained again.
        train_subset: Train on only the first N images of the training split (smoke runs).
        tensorboard: Also write TensorBoard logs to `output_dir/logs`.
        distribution: `"auto"` (several processes when the environment starts this one as one
            of them, else a TPU runtime's TPU, else all GPUs when there are several, else one
            device), `"mirrored"`, `"tpu"`, `"multi_host"` (several processes, JAX: see
            `training.multi_host`) or `"none"`; `batch_size` stays the global batch.
        linear_lr_scaling: Scale the learning rate by `batch_size / 128` (the linear scaling
            rule); off by default, so the learning rate is never changed silently.
        deterministic: Reproducible runs: seeded, TensorFlow op determinism on one thread per
            op, XLA off, and the augmentation run batch after batch (several times slower); the
            streamed images' crops, flips and jitter are keyed to (seed, epoch, image). A run
            killed and resumed then ends bit for bit as an uninterrupted one (TensorFlow), except
            on streamed images, whose files a resumed run reads in another order.
        mixed_precision: `"auto"` (float32 on H100/H200-class GPUs, where it was measured
            faster for this model at batch 128; bfloat16 on other GPUs of compute capability
            >= 8 and TPUs; float16 on T4/V100-class GPUs; float32 on a CPU), `"float32"`,
            `"mixed_float16"` or `"mixed_bfloat16"`. The logits stay float32.
        jit_compile: XLA for the train step, as Keras' `compile(jit_compile=…)`: `"auto"`
            (Keras' choice), `True` or `False`.
        compilation_cache_dir: JAX only: the persistent compilation cache, where a run stores
            the programs XLA compiled for it, so that the next identical run on this machine
            loads them instead of compiling (`~/.cache/keras_alexnet/jax`); `None` turns it off.
        cpu_threads: TensorFlow backend without a GPU or TPU: the threads each op runs on,
            one op at a time (an intra-op pool of this size, an inter-op pool of 1); `None`:
            the cores this process may use; 0: TensorFlow's own pools, which run several ops at
            once and slowed the epochs after the first on a 2-core CPU (docs/performance.md).
            Set before TensorFlow's runtime starts (else kept as they are, with a
            warning for a number);
            `deterministic=True` uses 1.
        steps_per_execution: Train steps per call into the compiled function; `None`: 1 on a
            CPU, 32 on an accelerator.
        augmentation: Where the augmentation runs: `"pipeline"` (the tf.data input pipeline, on
            the CPU; TensorFlow backend only), `"device"` (inside the compiled train step on the
            accelerator, the training and validation images held in its memory as uint8), or
            `"auto"` (device on the JAX backend, pipeline on TensorFlow). Never part of the
            exported model.
        figures: Draw the seed's figures into `output_dir` (needs matplotlib).
        checkpoint_every: Epochs between writes of the resume backup and of `best.keras`
            (`best.keras` is the best of the epochs written, and the last epoch always writes
            it), or `None`: automatic, a write once a minute of training has passed since the
            last one and at least 50 times as long as that write took (at most 2 % of the time:
            every epoch on a CPU, every minute or so on a fast GPU, never more often on a slow
            disk). Each write is ~190 MB (weights and optimizer state); 0 writes neither (a
            killed run cannot resume).
        verbose: Progress output, as Keras' `fit(verbose=…)`: 0 (silent), 1 (progress bar), 2
            (one line per epoch), or `"auto"`: a progress bar on a terminal, one line per epoch
            otherwise (a log file, CI).

    Example:

    >>> config = TrainConfig(epochs=1, train_subset=512)
    >>> config.learning_rate
    0.01
    """

    epochs: int = 49
    batch_size: int = 128
    eval_batch_size: int = 1000
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_epoch: int = 30
    lr_decay_factor: float = 0.1
    lr_schedule: str = dataclasses.field(default="step", metadata={"choices": LR_SCHEDULES})
    lr_patience: int = 5
    warmup_epochs: float = 0.0
    nesterov: bool = False
    label_smoothing: float = 0.0
    global_clipnorm: Optional[float] = 2.0
    validation_size: int = 10_000
    pad: int = 4
    pca_stddev: float = 0.1
    seed: int = 0
    network: str = dataclasses.field(default="cifar", metadata={"choices": NETWORKS})
    dataset: str = CIFAR10
    init: str = dataclasses.field(default="torch", metadata={"choices": INITS})
    dropout: float = 0.5
    conv1_stride: int = dataclasses.field(default=2, metadata={"choices": (1, 2)})
    batch_norm: bool = False
    width_multiplier: float = 1.0
    dense_units: int = 4096
    cutout: int = 0
    test_time_augmentation: str = dataclasses.field(default="none",
                                                    metadata={"choices": TEST_TIME_AUGMENTATIONS})
    data_dir: Optional[str] = None
    output_dir: str = os.path.join("runs", "alexnet_cifar10")
    saved_models_dir: str = "saved_models"
    model_name: str = "alexnet_cifar10"
    export: bool = True
    overwrite: bool = False
    train_subset: Optional[int] = None
    tensorboard: bool = False
    distribution: str = dataclasses.field(default="auto", metadata={"choices": DISTRIBUTIONS})
    linear_lr_scaling: bool = False
    deterministic: bool = False
    verbose: Union[int, str] = dataclasses.field(default="auto",
                                                 metadata={"choices": ("auto", 0, 1, 2)})
    mixed_precision: str = dataclasses.field(default="auto", metadata={"choices": PRECISIONS})
    jit_compile: Union[bool, str] = dataclasses.field(default="auto",
                                                      metadata={"choices": JIT_COMPILE})
    compilation_cache_dir: Optional[str] = DEFAULT_COMPILATION_CACHE
    steps_per_execution: Optional[int] = None
    cpu_threads: Optional[int] = None
    augmentation: str = dataclasses.field(default="auto", metadata={"choices": AUGMENTATION_PLACES})
    figures: bool = True
    checkpoint_every: Optional[int] = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            _check_type(field.name, value, _field_types()[field.name])
            choices = field.metadata.get("choices")  # the same list the CLI offers
            if choices is not None:
                check_choice(value, choices, f"TrainConfig.{field.name}")
        _check_ranges(self)
        check_momentum(self.momentum, "TrainConfig.momentum")
        check_weight_decay(self.weight_decay, "TrainConfig.weight_decay")
        _check_network_fields(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Builds a config from a dict (a run's `config.json`, also one written before two
        fields took Keras' names), rejecting unknown keys with a `ConfigError`."""
        values = with_keras_names(values)
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_recipe(cls, name: str, **overrides: Any) -> "TrainConfig":
        """The config of a named recipe (see `recipes()`), with `overrides` applied.

        A recipe's warm-up is a share of its run: overriding `epochs` without `warmup_epochs`
        scales the warm-up with it (and logs so at level INFO).

        Example:

        >>> TrainConfig.from_recipe("tweaked", epochs=5).warmup_epochs
        0.5
        """
        if name not in RECIPES:
            raise ConfigError(f"unknown recipe {name!r}; the recipes are {', '.join(RECIPES)}")
        values = {**RECIPES[name].values, **overrides}
        if "warmup_epochs" not in overrides:
            values["warmup_epochs"] = _scaled_warmup(name, values.get("epochs", cls.epochs))
        return cls.from_dict(values)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "TrainConfig":
        """Deprecated spelling of `from_recipe` (a preset is now a trained model)."""
        warn_renamed("TrainConfig.from_preset", "TrainConfig.from_recipe")
        return cls.from_recipe(name, **overrides)

    def replace(self, **overrides: Any) -> "TrainConfig":
        """Returns a copy with `overrides` applied and validated."""
        return TrainConfig.from_dict({**dataclasses.asdict(self), **overrides})

    @property
    def scaled_learning_rate(self) -> float:
        """The initial learning rate in use: `learning_rate`, times `batch_size / 128` under
        `linear_lr_scaling`."""
        if not self.linear_lr_scaling:
            return self.learning_rate
        return self.learning_rate * self.batch_size / REFERENCE_BATCH_SIZE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_differences(self, saved: dict[str, Any]) -> list[str]:
        """The fields that change what is trained (not `RUN_ONLY_FIELDS`) whose value differs
        from `saved`, a run's `config.json`, as `name saved→ours` (a field it lacks is equal).

        Example:

        >>> TrainConfig(learning_rate=0.02).training_differences(TrainConfig().to_dict())
        ['learning_rate 0.01→0.02']
        """
        saved = with_keras_names(saved)
        return [f"{name} {saved[name]!r}→{value!r}" for name, value in self.to_dict().items()
                if name not in RUN_ONLY_FIELDS and saved.get(name, value) != value]


# What the config.json of a run written before fields took Keras' names calls them.
_OLD_NAMES = {"clip_norm": "global_clipnorm"}
_OLD_VALUES = {"jit_compile": {"on": True, "off": False}}


def with_keras_names(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the old field names and values of `_OLD_NAMES` and `_OLD_VALUES` replaced
    by Keras' (`clip_norm` → `global_clipnorm`, `jit_compile` `"on"` → `True`).

    Example:

    >>> with_keras_names({"clip_norm": 2.0, "jit_compile": "off"})
    {'global_clipnorm': 2.0, 'jit_compile': False}
    """
    renamed = {_OLD_NAMES.get(name, name): value for name, value in values.items()}
    for name, old_values in _OLD_VALUES.items():
        if isinstance(renamed.get(name), str) and renamed[name] in old_values:
            renamed[name] = old_values[renamed[name]]
    return renamed


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named recipe: a one-line description and the `TrainConfig` values it changes."""

    description: str
    values: dict[str, Any]


# Every technique a recipe uses is a TrainConfig field; a recipe only sets values.
_TWEAKED = {
    "conv1_stride": 1, "batch_norm": True, "dropout": 0.25, "global_clipnorm": None,
    "lr_schedule": "cosine", "learning_rate": 0.05, "warmup_epochs": 2.0, "nesterov": True,
    "label_smoothing": 0.1, "test_time_augmentation": "flip", "epochs": 20,
}
# Time to accuracy on a CPU: a quarter of the convolutions' compute, big bfloat16 steps, a
# schedule that ends at 0, and only 2,000 validation images (benchmarks/time_to_accuracy.py).
_FAST = {
    "conv1_stride": 1, "batch_norm": True, "width_multiplier": 0.5, "dense_units": 512,
    "dropout": 0.1, "global_clipnorm": None, "batch_size": 512,
    "mixed_precision": "mixed_bfloat16",
    "lr_schedule": "linear", "learning_rate": 0.2, "warmup_epochs": 1.2, "nesterov": True,
    "label_smoothing": 0.2, "pca_stddev": 0.0, "validation_size": 2000,
    "test_time_augmentation": "flip", "epochs": 6,
}
# The 2012 paper's recipe for its own network: batch 128, SGD 0.01 with momentum 0.9 and weight
# decay 5e-4 (the defaults), the learning rate ÷10 when the validation error stalls (three times at
# most), 90 epochs, the paper's initialisation, ten-crop test.
_PAPER = {
    "network": "paper", "init": "paper", "lr_schedule": "plateau", "global_clipnorm": None,
    "test_time_augmentation": "ten_crop", "epochs": 90, "eval_batch_size": 128,
    "output_dir": os.path.join("runs", "alexnet_paper"), "model_name": "alexnet_paper",
}
# Accuracy within two CPU hours: what fast teaches, wider, with Cutout and more epochs.
_LONG = {**_FAST, "width_multiplier": 0.75, "dense_units": 1024, "cutout": 8, "epochs": 40}
RECIPES = {
    "seed": Recipe("the seed blog's recipe, as TrainConfig() (49 epochs, ~80 % test accuracy)", {}),
    "tweaked": Recipe("AlexNet with conv1 at stride 1 and batch norm, Nesterov SGD, warm-up + "
                      "cosine LR, label smoothing, flip test-time augmentation; 20 epochs",
                      _TWEAKED),
    "long": Recipe("fast at three-quarter width (fc6/fc7 of 1024) with Cutout 8×8; 40 epochs, "
                   "under 2 hours on a CPU", _LONG),
    "fast": Recipe("a half-width AlexNet (conv1 at stride 1, batch norm, fc6/fc7 of 512) at batch "
                   "512 in bfloat16, one-cycle LR, label smoothing, flip test-time augmentation; "
                   "6 epochs, minutes on a CPU", _FAST),
    "paper": Recipe("the 2012 paper's network and recipe: 224×224 crops of images resized to 256, "
                    "flips, PCA jitter, SGD 0.01 ÷10 on plateaus, 90 epochs, ten-crop test "
                    "(pass --dataset)", _PAPER),
}


def _scaled_warmup(name: str, epochs: Any) -> float:
    """The recipe's `warmup_epochs` for a run of `epochs`: the same share of the run."""
    recipe = RECIPES[name].values
    warmup = recipe.get("warmup_epochs", TrainConfig.warmup_epochs)
    recipe_epochs = recipe.get("epochs", TrainConfig.epochs)
    if not warmup or epochs == recipe_epochs or not isinstance(epochs, int) or epochs < 1:
        return warmup  # nothing to scale, or a bad `epochs` that validation reports
    scaled = warmup * epochs / recipe_epochs
    logger.info("warmup_epochs=%g, the %s recipe's share of the run (%g of its %d epochs)",
                scaled, name, warmup, recipe_epochs)
    return scaled


def recipes() -> dict[str, str]:
    """Each recipe's name with its one-line description.

    Example:

    >>> sorted(recipes())
    ['fast', 'long', 'paper', 'seed', 'tweaked']
    """
    return {name: recipe.description for name, recipe in RECIPES.items()}


def presets() -> dict[str, str]:
    """Deprecated spelling of `recipes()`; the trained models are `AlexNet.presets`."""
    warn_renamed("keras_alexnet.presets()", "keras_alexnet.recipes() (trained models: "
                 "keras_alexnet.AlexNet.presets)")
    return recipes()


def warn_renamed(old: str, new: str) -> None:
    """Warns once per call site (a `FutureWarning`, shown by default) that `old` is now
    `new`."""
    warnings.warn(f"{old} is deprecated: use {new}; a preset is now a trained model",
                  FutureWarning, stacklevel=3)


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    allowed = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if value is None and type(None) in allowed:
        return
    for kind in allowed:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if kind in (str, bool) and isinstance(value, kind):
            return
    wanted = " or ".join("None" if k is type(None) else k.__name__ for k in allowed)
    raise ConfigError(f"TrainConfig.{name} must be {wanted}, got {value!r}")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


# The fields only the CIFAR network's recipe uses, with the values that leave them off.
CIFAR_ONLY_FIELDS = {"conv1_stride": 2, "batch_norm": False, "width_multiplier": 1.0,
                     "dense_units": 4096, "cutout": 0}


def _check_network_fields(config: TrainConfig) -> None:
    """The network and the data set go together: the CIFAR network trains on CIFAR-10 only,
    and the fields of its recipe do not apply to the paper's network."""
    if config.network == "cifar" and config.dataset != CIFAR10:
        raise ConfigError(f"TrainConfig.dataset {config.dataset!r} needs network='paper' (the "
                          f"CIFAR network trains on cifar10 only); use the paper recipe")
    if config.network == "paper":
        changed = [name for name, off in CIFAR_ONLY_FIELDS.items() if getattr(config, name) != off]
        if changed:
            raise ConfigError(f"TrainConfig.{changed[0]} applies to the CIFAR network only, not "
                              f"to network='paper'")
        if config.augmentation == "device":
            raise ConfigError("TrainConfig.augmentation='device' holds CIFAR-10 in the device's "
                              "memory; the paper's network streams its images ('pipeline')")
    if config.dataset == CIFAR10 and config.validation_size >= 50_000:
        raise ConfigError(f"TrainConfig.validation_size must be below CIFAR-10's 50000 training "
                          f"images, got {config.validation_size}")


def _check_ranges(config: TrainConfig) -> None:
    checks = [
        ("epochs", config.epochs >= 1, "must be >= 1"),
        ("batch_size", config.batch_size >= 1, "must be >= 1"),
        ("eval_batch_size", config.eval_batch_size >= 1, "must be >= 1"),
        ("learning_rate", config.learning_rate > 0, "must be > 0"),
        ("lr_decay_epoch", config.lr_decay_epoch >= 0, "must be >= 0"),
        ("lr_decay_factor", 0 < config.lr_decay_factor <= 1, "must be in (0, 1]"),
        ("warmup_epochs", 0 <= config.warmup_epochs < config.epochs, "must be in [0, epochs)"),
        ("label_smoothing", 0 <= config.label_smoothing < 1, "must be in [0, 1)"),
        ("cutout", 0 <= config.cutout <= 32, "must be in [0, 32]"),
        ("width_multiplier", 0 < config.width_multiplier <= 4, "must be in (0, 4]"),
        ("dense_units", config.dense_units >= 1, "must be >= 1"),
        ("global_clipnorm", config.global_clipnorm is None or config.global_clipnorm > 0,
         "must be > 0 or None"),
        ("validation_size", config.validation_size >= 1, "must be >= 1"),
        ("lr_patience", config.lr_patience >= 0, "must be >= 0"),
        ("dataset", bool(config.dataset), "must not be empty"),
        ("pad", 0 <= config.pad <= 16, "must be in [0, 16]"),
        ("pca_stddev", config.pca_stddev >= 0, "must be >= 0"),
        ("seed", config.seed >= 0, "must be >= 0"),
        ("dropout", 0 <= config.dropout < 1, "must be in [0, 1)"),
        ("output_dir", bool(config.output_dir), "must not be empty"),
        ("saved_models_dir", bool(config.saved_models_dir), "must not be empty"),
        ("model_name", bool(config.model_name) and os.sep not in config.model_name,
         "must be a non-empty name without path separators"),
        ("train_subset", config.train_subset is None or config.train_subset >= 1,
         "must be >= 1 or None"),
        ("steps_per_execution",
         config.steps_per_execution is None or config.steps_per_execution >= 1,
         "must be >= 1 or None"),
        ("cpu_threads", config.cpu_threads is None or config.cpu_threads >= 0,
         "must be >= 0 or None"),
        ("checkpoint_every", config.checkpoint_every is None or config.checkpoint_every >= 0,
         "must be >= 0 or None"),
    ]
    for name, ok, rule in checks:
        if not ok:
            raise ConfigError(f"TrainConfig.{name} {rule}, got {getattr(config, name)!r}")


# The checks of values that a `TrainConfig` and the parts it configures (`TorchSGD`,
# `LayerInitializers`, `devices.place`) both take: each rule is written once, here.
def check_choice(value: Any, choices: typing.Sequence[Any], name: str) -> None:
    """Raises `ConfigError`, naming the value `name`, unless `value` is one of `choices`."""
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_momentum(momentum: float, name: str = "momentum") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `momentum` is in [0, 1)."""
    if not 0 <= momentum < 1:
        raise ConfigError(f"{name} must be in [0, 1), got {momentum!r}")


def check_weight_decay(weight_decay: float, name: str = "weight_decay") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `weight_decay` is >= 0."""
    if not weight_decay >= 0:
        raise ConfigError(f"{name} must be >= 0, got {weight_decay!r}")


def check_ten_crop_pad(pad: int, name: str = "ten_crop_pad") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `pad` is in
    0..`MAX_TEN_CROP_PAD`."""
    if not 0 <= pad <= MAX_TEN_CROP_PAD:
        raise ConfigError(f"{name} must be in 0..{MAX_TEN_CROP_PAD}, got {pad}")


def check_packages(config: TrainConfig) -> None:
    """Raises `ConfigError` when an option of `config` needs a package that is not installed
    (`tensorboard=True`: TensorBoard, which TensorFlow no longer installs)."""
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("TrainConfig.tensorboard needs TensorBoard: pip install tensorboard "
                          "(or install this package with its [tensorboard] extra)")


def check_timeout(timeout: float, name: str = "timeout") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `timeout` is a positive finite
    number of seconds."""
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"{name} must be a positive finite number of seconds, got {timeout!r}")
