"""The paper's input pipeline beside the paper network's train step, in images/s on this machine:
can the pipeline feed the step?

Pipeline: the one `train(recipe="paper")` runs (`data.image_sets` + `data.imagenet`): read and
decode each file → shorter side to 256 → random 224×224 crop and flip → batch → PCA colour jitter.
By default on a folder of ImageNet-sized JPEG files (500×375, CIFAR-10 images enlarged), written
here; `--image-size 256x256` writes them as the paper stored ImageNet (down-sampled to 256×256
once); `--dataset` takes any folder of class folders or tensorflow-datasets name instead. Step:
`PaperAlexNet` forward, backward and SGD update on a batch already made, as `fit` runs it.

    python benchmarks/paper_pipeline.py [--dataset DIR|NAME] [--image-size 500x375]
        [--images 2000] [--steps 4] [--quick]

Prints one JSON line per measurement and their ratio. Not a test: the numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    cifar_train_images,
    emit,
    images_per_second,
)

IMAGENET_SIZE = "500x375"  # width × height of a typical ImageNet photograph


def write_jpeg_folder(root: str, count: int, data_dir: str, size: str = IMAGENET_SIZE) -> str:
    """`count` CIFAR-10 training images enlarged to `size` (`"WIDTHxHEIGHT"`), as JPEG files in
    class folders."""
    from PIL import Image

    from keras_alexnet.data.cifar10 import CLASS_NAMES

    images, labels, _ = cifar_train_images(data_dir, count)
    width, height = map(int, size.split("x"))
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, CLASS_NAMES[label])
        os.makedirs(folder, exist_ok=True)
        large = Image.fromarray(image).resize((width, height), Image.BILINEAR)
        large.save(os.path.join(folder, f"{index:05d}.jpg"), quality=90)
    return root


def pipeline_images_per_second(dataset: str, batch_size: int, passes: int) -> list[float]:
    """Images/s of each pass of the paper run's training pipeline over `dataset`."""
    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data.image_sets import load_image_set
    from keras_alexnet.training.fit_setup import image_set_data

    config = TrainConfig.from_recipe("paper", dataset=dataset, batch_size=batch_size,
                                     validation_size=batch_size)
    data = load_image_set(config)
    train = image_set_data(data, config)["x"].take(math.ceil(data.train_size / batch_size))
    return images_per_second(train, passes)


def step_images_per_second(batch_size: int, steps: int) -> tuple[float, float]:
    """`(images/s, first call's seconds)` of the paper network's train step on one device."""
    import keras

    from keras_alexnet.config import TrainConfig
    from keras_alexnet.models.build import build_model
    from keras_alexnet.training.fit_setup import compile_for_training
    from keras_alexnet.training.performance import resolve

    config = TrainConfig.from_recipe("paper", batch_size=batch_size)
    model = build_model("paper", num_classes=10, seed=0)
    compile_for_training(model, config, resolve(config), steps_per_epoch=steps, num_classes=10)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size * steps, 224, 224, 3)).astype("float32")
    labels = rng.integers(0, 10, batch_size * steps)
    start = time.perf_counter()
    model.fit(images[:batch_size], labels[:batch_size], batch_size=batch_size, verbose=0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(images, labels, batch_size=batch_size, verbose=0, shuffle=False)
    keras.ops.convert_to_numpy(model.weights[-1])  # wait for the device
    return len(images) / (time.perf_counter() - start), first


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=None,
                        help="a folder of class folders or a tfds name (default: ImageNet-sized "
                             "JPEG files of CIFAR-10 images, written here)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="the CIFAR-10 copy the default JPEG files are made from")
    parser.add_argument("--images", type=int, default=2000, help="JPEG files to write")
    parser.add_argument("--image-size", default=IMAGENET_SIZE,
                        help="WIDTHxHEIGHT of the JPEG files written (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--passes", type=int, default=3,
                        help="pipeline passes; the first (tracing) is reported apart")
    parser.add_argument("--steps", type=int, default=4, help="train steps measured")
    parser.add_argument("--quick", action="store_true",
                        help="256 files, 2 passes, 2 steps of 16 images (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.passes, args.steps, args.batch_size = 256, 2, 2, 16

    with tempfile.TemporaryDirectory(prefix="paper_pipeline_") as scratch:
        dataset = args.dataset or write_jpeg_folder(os.path.join(scratch, "jpeg"), args.images,
                                                    args.data_dir, args.image_size)
        passes = pipeline_images_per_second(dataset, args.batch_size, args.passes)
    pipeline = float(np.median(passes[1:] or passes))
    emit("paper_pipeline", part="input_pipeline", dataset=args.dataset or f"jpeg_{args.image_size}",
         batch_size=args.batch_size, images_per_second=round(pipeline, 1),
         first_pass_images_per_second=round(passes[0], 1),
         passes_images_per_second=[round(rate, 1) for rate in passes[1:]])
    step, first = step_images_per_second(args.batch_size, args.steps)
    emit("paper_pipeline", part="train_step", batch_size=args.batch_size, steps=args.steps,
         images_per_second=round(step, 2), first_call_seconds=round(first, 1))
    emit("paper_pipeline", part="ratio", pipeline_over_step=round(pipeline / step, 2))


if __name__ == "__main__":
    main()
