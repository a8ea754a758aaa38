"""Train-step throughput of the seed recipe's full step — device-side augmentation, forward,
backward, clipped PyTorch-style SGD — on the current Keras backend and device, for each batch size
and precision: images/s and ms/step, with the first call's compilation reported apart.

    KERAS_BACKEND=jax python benchmarks/train_step.py [--batch-sizes 128 512] [--steps 100]
        [--network alexnet|trivial] [--no-augmentation] [--steps-per-execution N] [--quick]

"mixed" is the precision `TrainConfig(mixed_precision="auto")` picks on an accelerator: bfloat16
on TPUs and on GPUs of compute capability ≥ 8, float16 on older GPUs (bfloat16 on a CPU).
`--network trivial` swaps AlexNet for global average pooling + one dense layer: what is left is the
cost of Keras' fit loop, the image lookup and the augmentation, the ceiling any network can reach;
`--no-augmentation` leaves the augmentation out, so the two together split a step's time into
loop, augmentation and network. `--steps-per-execution` defaults to what `train()` picks here.
Prints one JSON line per measurement. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from common import DEFAULT_DATA_DIR, cifar_train_images, emit  # noqa: E402


def mixed_precision_here() -> str:
    from keras_alexnet.config import TrainConfig
    from keras_alexnet.training.performance import Accelerator, find_accelerator, resolve

    accelerator = find_accelerator()
    if accelerator.kind == "cpu":  # "auto" keeps float32 on a CPU; measure bfloat16 there
        accelerator = Accelerator("tpu", accelerator.name)
    return resolve(TrainConfig(mixed_precision="auto"), accelerator).mixed_precision


def build_network(name: str, stats):
    import keras

    from keras_alexnet.models.build import build_model

    if name == "alexnet":
        return build_model(mean=stats.mean, std=stats.std, seed=0)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, dtype="float32")(pooled))


def measure(images, labels, batch_size: int, precision: str, steps: int, network: str,
            augment: bool = True, steps_per_execution: int | None = None) -> dict:
    import keras

    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data.augment import build_augmentation
    from keras_alexnet.data.cifar10 import PixelStats
    from keras_alexnet.data.device_pipeline import DeviceAugmentedModel
    from keras_alexnet.training.fit_setup import compile_for_training
    from keras_alexnet.training.performance import dtype_policy, resolve

    config = TrainConfig(batch_size=batch_size, mixed_precision=precision,
                         steps_per_execution=steps_per_execution)
    performance = resolve(config)
    stats = PixelStats.from_images(images)
    augmentation = (build_augmentation(stats.eigenvalues, stats.eigenvectors, seed=0) if augment
                    else keras.layers.Identity())
    with dtype_policy(precision):
        model = build_network(network, stats)
        trainer = DeviceAugmentedModel(model, images, augmentation)
        compile_for_training(trainer, config, performance, steps_per_epoch=steps, num_classes=10)
    indices = np.arange(len(images), dtype=np.int32)
    needed = batch_size * steps
    indices = np.resize(indices, needed)
    targets = labels[indices]

    start = time.perf_counter()  # the first step: tracing and compilation, plus one step
    trainer.fit(indices[:batch_size], targets[:batch_size], batch_size=batch_size, epochs=1,
                shuffle=False, verbose=0)
    keras.ops.convert_to_numpy(model.weights[-1])  # wait for the device
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    trainer.fit(indices, targets, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    keras.ops.convert_to_numpy(model.weights[-1])
    seconds = time.perf_counter() - start
    return {"network": network, "augmentation": augment, "batch_size": batch_size,
            "precision": precision, "steps": steps,
            "steps_per_execution": performance.steps_per_execution,
            "images_per_second": round(needed / seconds),
            "ms_per_step": round(1e3 * seconds / steps, 3),
            "compile_seconds": round(compile_seconds, 2), "jit_compile": trainer.jit_compile}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed"])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement")
    parser.add_argument("--network", choices=["alexnet", "trivial"], default="alexnet")
    parser.add_argument("--no-augmentation", dest="augment", action="store_false",
                        help="leave the augmentation out of the step")
    parser.add_argument("--steps-per-execution", type=int, default=None,
                        help="default: what train() picks on this device")
    parser.add_argument("--quick", action="store_true", help="batch 8, 2 steps (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.steps = [8], 2
    images, labels, source = cifar_train_images(args.data_dir, 50_000 if not args.quick else 64)
    for batch_size in args.batch_sizes:
        for precision in args.precisions:
            policy = mixed_precision_here() if precision == "mixed" else precision
            emit("train_step", data=source,
                 **measure(images, labels, batch_size, policy, args.steps, args.network,
                           args.augment, args.steps_per_execution))


if __name__ == "__main__":
    main()
