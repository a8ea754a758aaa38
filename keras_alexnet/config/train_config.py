"""`TrainConfig`: the one place every hyperparameter lives. Its defaults are the seed's recipe;
each field's help is written beside it (the class docstring's `Args:` and the command line's
`--help` are made from it)."""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
from typing import Any, Optional, Sequence, Union

from keras_alexnet.config.choices import (
    AUGMENTATION_PLACES,
    CIFAR10,
    CONV1_STRIDES,
    DEFAULT_COMPILATION_CACHE,
    DISTRIBUTIONS,
    INITS,
    JIT_COMPILE,
    LR_SCHEDULES,
    NETWORK_CATALOGUE,
    PRECISIONS,
    TEST_TIME_AUGMENTATIONS,
    VERBOSITIES,
)
from keras_alexnet.config.migration import warn_renamed, with_keras_names
from keras_alexnet.config.recipes import recipe_values
from keras_alexnet.config.time_budget import parse_time_budget
from keras_alexnet.config.validation import validate
from keras_alexnet.errors import ConfigError

REFERENCE_BATCH_SIZE = 128  # the seed's batch, which its learning rate belongs to
# The fields a resumed run may change: where files go and what is printed, not what is trained.
RUN_ONLY_FIELDS = frozenset({
    "data_dir", "output_dir", "saved_models_dir", "model_name", "export", "tensorboard", "verbose",
    "compilation_cache_dir", "figures", "checkpoint_every", "eval_batch_size", "cpu_threads",
    "overwrite"})


def option(default: Any, help: str, choices: Optional[Sequence[Any]] = None):
    """A `TrainConfig` field: its default, its help (Markdown-style backticks) and, where it has
    them, the values it may take."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and paths of one training run.

    The defaults reproduce the seed blog's recipe: AlexNet adapted to CIFAR-10, 40,000/10,000
    train/validation split, pad-4 random crop + horizontal flip + PCA colour jitter, SGD with
    momentum and coupled L2 weight decay (as PyTorch's `torch.optim.SGD`), LR ×0.1 after epoch 30,
    global gradient-norm clipping at 2.0, batch 128, 49 epochs, PyTorch's default initialisation.

    Example:

    >>> config = TrainConfig(epochs=1, train_subset=512)
    >>> config.learning_rate
    0.01
    """

    epochs: int = option(49, "Number of passes over the training split.")
    time_budget: Union[str, float, None] = option(None,
        "Wall time for the whole run, from process start to the SavedModel: minutes (`20`) or a "
        "duration (`'20m'`, `'1h30m'`, `'90s'`). The run measures this host, chooses the recipe "
        "(`recipe` restricts it to one) and its epochs from the measured frontier of accuracy "
        "against epochs (`config/frontier.json`), and ends its learning-rate schedule at the "
        "deadline, re-planned as it goes if the machine slows down; `metrics.json` records the "
        "plan. `None`: train `epochs` epochs.")
    batch_size: int = option(128, "Images per training step.")
    eval_batch_size: int = option(1000,
        "Images per validation and test batch (inference only, so the results are those of any "
        "other batch size; bigger batches run faster, and 10,000 images at 1,000 make no partial "
        "batch to compile a second program for).")
    learning_rate: float = option(0.01, "Initial SGD learning rate.")
    momentum: float = option(0.9, "SGD momentum (PyTorch form: `buf = momentum * buf + g`).")
    weight_decay: float = option(5e-4,
        "Coupled L2 coefficient added to the gradient (`g + weight_decay * w`).")
    lr_decay_epoch: int = option(30,
        "Number of epochs trained at `learning_rate`; later epochs use `learning_rate * "
        "lr_decay_factor`.")
    lr_decay_factor: float = option(0.1,
        "Factor applied to the learning rate after `lr_decay_epoch`.")
    lr_schedule: str = option("step",
        "`'step'` (the seed: `learning_rate`, times `lr_decay_factor` after `lr_decay_epoch`, set "
        "per epoch), `'plateau'` (the paper: times `lr_decay_factor` when the validation accuracy "
        "has not improved for `lr_patience` epochs, at most three times; "
        "`keras.callbacks.ReduceLROnPlateau`), `'cosine'` (per step: a linear warm-up from 0 to "
        "`learning_rate` over `warmup_epochs`, then a cosine decay to 0 at the last step) or "
        "`'linear'` (per step: the same warm-up, then a straight line to 0 at the last step; a "
        "triangular, one-cycle schedule).", choices=LR_SCHEDULES)
    lr_patience: int = option(5,
        "Epochs without a better validation accuracy before the `'plateau'` schedule lowers the "
        "learning rate.")
    warmup_epochs: float = option(0.0,
        "Epochs of linear warm-up of the `'cosine'` and `'linear'` schedules.")
    nesterov: bool = option(False, "Nesterov momentum (PyTorch's `nesterov=True` form).")
    label_smoothing: float = option(0.0,
        "Weight ε of the uniform distribution mixed into the one-hot targets.")
    global_clipnorm: Optional[float] = option(2.0,
        "Maximum global L2 norm of the loss gradient; `None` disables clipping.")
    validation_size: int = option(10_000,
        "Training images held out for validation (of CIFAR-10's 50,000; of another data set's "
        "training split when it has no validation split of its own; a folder holds out as many "
        "again as its test images).")
    pad: int = option(4,
        "Zero padding (pixels per side) before the random crop back to 32×32 (the CIFAR network's "
        "augmentation, and its ten test crops).")
    pca_stddev: float = option(0.1, "Standard deviation σ of the PCA colour jitter coefficients α.")
    seed: int = option(0,
        "Seed of the train/validation split, the initialisation, shuffling and augmentation.")
    network: str = option("cifar",
        "`'cifar'` (the seed's CIFAR-10 AlexNet, `AlexNet`) or `'paper'` (the 2012 paper's "
        "network for 224×224 crops of images resized to 256 on the shorter side, `PaperAlexNet`, "
        "with its two-GPU groups and local response normalisation; trained on streamed images: "
        "`data.image_sets`).", choices=NETWORK_CATALOGUE)
    dataset: str = option(CIFAR10,
        "`'cifar10'`, any tensorflow-datasets image-classification name (`'imagenet2012'`, "
        "`'imagenette/320px-v2'`, …; `data_dir` is then tfds' data directory), or a directory of "
        "class sub-folders of PNG, JPEG or BMP files (the "
        "`keras.utils.image_dataset_from_directory` layout). Other data sets than CIFAR-10 need "
        "`network='paper'`.")
    init: str = option("torch",
        "Weight initialisation, `'torch'` (PyTorch defaults, as the seed) or `'paper'`.",
        choices=INITS)
    dropout: float = option(0.5,
        "Dropout rate before fc6, fc7 and fc8 (the paper's network: after fc6 and fc7).")
    conv1_stride: int = option(2,
        "Stride of conv1: 2 (the seed) or 1 (conv3–conv5 see 8×8 maps, not 4×4; about 3× the "
        "compute).", choices=CONV1_STRIDES)
    batch_norm: bool = option(False, "Batch normalisation between each convolution and its ReLU.")
    width_multiplier: float = option(1.0,
        "Factor on the five convolutions' filter counts (64, 192, 384, 256, 256), each rounded to "
        "a multiple of 16; 0.5 is half as wide (about ¼ of the convolutions' compute).")
    dense_units: int = option(4096, "Width of fc6 and fc7 (the seed: 4096).")
    cutout: int = option(0,
        "Side of the square each training image has blanked (filled with the mean pixel) at a "
        "random centre, after crop and flip (Cutout); 0 is off.")
    test_time_augmentation: str = option("none",
        "`'none'`; `'flip'`: the test predictions average the class probabilities of each image "
        "and its mirror image; `'ten_crop'`: of the paper's ten patches (four corners and the "
        "centre, and their mirror images; for the CIFAR network 32×32 crops of the image padded "
        "by `pad`).", choices=TEST_TIME_AUGMENTATIONS)
    data_dir: Optional[str] = option(None,
        "A local CIFAR-10 copy (`cifar-10-batches-py` directory or `cifar-10-python.tar.gz`). "
        "`None` uses `$KERAS_ALEXNET_DATA` if set, else tensorflow-datasets. For another tfds "
        "`dataset`: tfds' data directory.")
    output_dir: str = option(os.path.join("runs", "alexnet_cifar10"),
        "The run directory: checkpoint, `history.csv`, `metrics.json`, backups.")
    saved_models_dir: str = option("saved_models",
        "Base directory of exported SavedModels (TF Serving layout).")
    model_name: str = option("alexnet_cifar10",
        "Name of the exported model: `saved_models_dir/model_name/<version>/`.")
    export: bool = option(True, "Whether `train()` exports a SavedModel after testing.")
    overwrite: bool = option(False,
        "Start afresh in an `output_dir` that holds a run, removing its files; without it, a run "
        "of another config there (finished or interrupted) is refused, and one of the same config "
        "is continued from its backup or trained again.")
    train_subset: Optional[int] = option(None,
        "Train on only the first N images of the training split (smoke runs).")
    tensorboard: bool = option(False, "Also write TensorBoard logs to `output_dir/logs`.")
    distribution: str = option("auto",
        "`'auto'` (several processes when the environment starts this one as one of them, else a "
        "TPU runtime's TPU, else all GPUs when there are several, else one device), `'mirrored'`, "
        "`'tpu'`, `'multi_host'` (several processes, JAX: see `training.multi_host`) or `'none'`; "
        "`batch_size` stays the global batch.", choices=DISTRIBUTIONS)
    linear_lr_scaling: bool = option(False,
        "Scale the learning rate by `batch_size / 128` (the linear scaling rule); off by default, "
        "so the learning rate is never changed silently.")
    deterministic: bool = option(False,
        "Reproducible runs: seeded, TensorFlow op determinism on one thread per op, XLA off, and "
        "the augmentation run batch after batch (several times slower); the streamed images' "
        "crops, flips and jitter are keyed to (seed, epoch, image). A run killed and resumed then "
        "ends bit for bit as an uninterrupted one (TensorFlow), except on streamed images, which "
        "a resumed run batches in another order.")
    verbose: Union[int, str] = option("auto",
        "Progress output, as Keras' `fit(verbose=…)`: 0 (silent), 1 (progress bar), 2 (one line "
        "per epoch), or `'auto'`: a progress bar on a terminal, one line per epoch otherwise (a "
        "log file, CI).", choices=VERBOSITIES)
    mixed_precision: str = option("auto",
        "`'auto'` (float32 on H100/H200-class GPUs, where it was measured faster for this model "
        "at batch 128; bfloat16 on other GPUs of compute capability >= 8 and TPUs; float16 on "
        "T4/V100-class GPUs; on a CPU the faster of float32 and bfloat16, measured on this host "
        "by a few training steps of the run's network and cached per host, or float32 for a run "
        "of under 20,000 training images), `'float32'`, `'mixed_float16'` or "
        "`'mixed_bfloat16'`. The logits stay float32.", choices=PRECISIONS)
    jit_compile: Union[bool, str] = option("auto",
        "XLA for the train step, as Keras' `compile(jit_compile=…)`: `'auto'` (Keras' choice), "
        "`True` or `False`.", choices=JIT_COMPILE)
    compilation_cache_dir: Optional[str] = option(DEFAULT_COMPILATION_CACHE,
        "JAX only: the persistent compilation cache, where a run stores the programs XLA compiled "
        "for it, so that the next identical run on this machine loads them instead of compiling "
        "(`~/.cache/keras_alexnet/jax`); `None` turns it off.")
    steps_per_execution: Optional[int] = option(None,
        "Train steps per call into the compiled function; `None`: 1 on a CPU, 32 on an "
        "accelerator.")
    cpu_threads: Optional[int] = option(None,
        "TensorFlow backend without a GPU or TPU: the threads each op runs on, one op at a time "
        "(an intra-op pool of this size, an inter-op pool of 1); `None`: the cores this process "
        "may use; 0: TensorFlow's own pools, which run several ops at once and slowed the epochs "
        "after the first on a 2-core CPU (docs/performance.md). Set before TensorFlow's runtime "
        "starts (else kept as they are, with a warning for a number); `deterministic=True` uses "
        "1.")
    augmentation: str = option("auto",
        "Where the augmentation runs: `'pipeline'` (the tf.data input pipeline, on the CPU; "
        "TensorFlow backend only), `'device'` (inside the compiled train step on the accelerator, "
        "the training and validation images held in its memory as uint8), or `'auto'` (device on "
        "the JAX backend, pipeline on TensorFlow). Never part of the exported model.",
        choices=AUGMENTATION_PLACES)
    figures: bool = option(True, "Draw the seed's figures into `output_dir` (needs matplotlib).")
    checkpoint_every: Optional[int] = option(None,
        "Epochs between writes of the resume backup and of `best.keras` (`best.keras` is the best "
        "of the epochs written, and the last epoch always writes it), or `None`: automatic, a "
        "write once a minute of training has passed since the last one and at least 50 times as "
        "long as that write took (at most 2 % of the time: every epoch on a CPU, every minute or "
        "so on a fast GPU, never more often on a slow disk). Each write is ~190 MB (weights and "
        "optimizer state); 0 writes neither (a killed run cannot resume).")

    def __post_init__(self) -> None:
        validate(self)

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
        return cls.from_dict(recipe_values(name, overrides, cls.epochs))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "TrainConfig":
        """Deprecated spelling of `from_recipe` (a preset is now a trained model)."""
        warn_renamed("TrainConfig.from_preset", "TrainConfig.from_recipe")
        return cls.from_recipe(name, **overrides)

    def replace(self, **overrides: Any) -> "TrainConfig":
        """Returns a copy with `overrides` applied and validated."""
        return TrainConfig.from_dict({**dataclasses.asdict(self), **overrides})

    @property
    def streams_images(self) -> bool:
        """Whether the run's network trains on streamed images (any data set, resized and
        cropped in `tf.data`) rather than on CIFAR-10 held in memory (`NETWORK_CATALOGUE`)."""
        return NETWORK_CATALOGUE[self.network].streams_images

    @property
    def time_budget_seconds(self) -> Optional[float]:
        """`time_budget` in seconds, or `None`."""
        return None if self.time_budget is None else parse_time_budget(self.time_budget)

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


def _with_args_section(config_class: type) -> str:
    """The class docstring with an `Args:` section of each field's help before its `Example:`
    (indented as the docstring is: Python 3.13 strips a docstring's common indentation)."""
    doc = config_class.__doc__
    indent = re.search(r"^( *)Example:", doc, flags=re.M).group(1)
    lines = [f"{indent}Args:"]
    for field in dataclasses.fields(config_class):
        lines += textwrap.wrap(f"{field.name}: {field.metadata['help']}", 96,
                               initial_indent=indent + " " * 4, subsequent_indent=indent + " " * 8,
                               break_long_words=False, break_on_hyphens=False)
    return doc.replace(f"{indent}Example:", "\n".join(lines) + f"\n\n{indent}Example:", 1)


TrainConfig.__doc__ = _with_args_section(TrainConfig)
