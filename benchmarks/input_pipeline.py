"""Input pipeline throughput: the training tf.data pipeline with the seed's full augmentation
(batched: every batch augmented at once, XLA-compiled) beside the same augmentation mapped over
single images, in images/s, and their ratio, in one run.

    python benchmarks/input_pipeline.py [--data-dir DIR] [--epochs 5] [--quick]

Prints one JSON line per measurement. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from common import DEFAULT_DATA_DIR, cifar_train_images, emit, images_per_second  # noqa: E402


def per_image_dataset(images, labels, batch_size, augmentation, seed):
    """The naive pipeline: shuffle → augment each image alone → batch."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def augment(image):
        return augmentation(tf.cast(image, "float32")[None], training=True)[0]

    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
            .map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--images", type=int, default=40_000, help="training images per pass")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5, help="passes; the first (tracing, XLA "
                                                             "compilation) is reported apart")
    parser.add_argument("--quick", action="store_true", help="2,048 images, 2 passes (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs = 2048, 2

    from keras_alexnet.data.augment import build_augmentation
    from keras_alexnet.data.cifar10 import PixelStats
    from keras_alexnet.data.pipeline import train_dataset

    images, labels, source = cifar_train_images(args.data_dir, args.images)
    stats = PixelStats.from_images(images)
    rates = {}
    for variant in ("batched", "per_image"):
        augmentation = build_augmentation(stats.eigenvalues, stats.eigenvectors, seed=0)
        make = train_dataset if variant == "batched" else per_image_dataset
        dataset = make(images, labels, args.batch_size, augmentation, 0)
        passes = images_per_second(dataset, args.epochs)
        rates[variant] = float(np.median(passes[1:]))
        emit("input_pipeline", variant=variant, data=source, images=len(images),
             batch_size=args.batch_size,
             images_per_second=round(rates[variant]), first_pass_images_per_second=round(passes[0]),
             passes_images_per_second=[round(r) for r in passes[1:]])
    emit("input_pipeline", variant="ratio", batched_over_per_image=round(
        rates["batched"] / rates["per_image"], 2))


if __name__ == "__main__":
    main()
