"""The `fast` recipe at batch 256 (the 4- and 20-minute rows of the README) written in PyTorch as
a PyTorch user would run it on a CPU: data held as tensors, batched augmentation, bfloat16
autocast, channels_last and `torch.compile`. Not part of the package: run it in a virtualenv of
its own (`pip install torch numpy`), beside `keras-alexnet train` on the same machine
(`benchmarks/side_by_side.sh` runs both).

    python benchmarks/torch_fast.py --data-dir DIR [--epochs 5] [--no-compile] [--float32]
                                   [--train-subset N]

The same network and recipe as `keras-alexnet train --recipe fast --batch-size 256
--learning-rate 0.1`: the half-width AlexNet (conv1 32 3×3/1, conv2 96, conv3 192, conv4 128,
conv5 128, batch norm, max-pools after conv1, conv2, conv5; fc6 and fc7 of 512, dropout 0.1
before fc6, fc7 and fc8; PyTorch's default initialisation), 48,000 training and 2,000
validation images, 4-pixel pad-and-crop and flips, SGD with Nesterov momentum 0.9 and weight
decay 5e-4, a learning rate rising linearly to 0.1 over the first fifth of the run and falling
linearly to 0, label smoothing 0.2, flip test-time augmentation. Prints one JSON line per epoch
and one for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

WIDTHS = (32, 96, 192, 128, 128)
POOL_AFTER = (True, True, False, False, True)
VALIDATION = 2000


def load_cifar(root: str):
    """CIFAR-10's python batches as NHWC uint8 arrays and int64 labels."""
    def batch(name):
        with open(os.path.join(root, name), "rb") as file:
            data = pickle.load(file, encoding="bytes")
        images = np.asarray(data[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, np.asarray(data[b"labels"], np.int64)

    parts = [batch(f"data_batch_{index}") for index in range(1, 6)]
    x_test, y_test = batch("test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_test, y_test)


class FastAlexNet(nn.Module):
    """The half-width AlexNet of the `fast` recipe, normalising raw pixels itself."""

    def __init__(self, mean, std, num_classes: int = 10, dropout: float = 0.1):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        layers, channels = [], 3
        for width, pool in zip(WIDTHS, POOL_AFTER):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * 4 * 4, 512), nn.ReLU(True),
            nn.Dropout(dropout), nn.Linear(512, 512), nn.ReLU(True),
            nn.Dropout(dropout), nn.Linear(512, num_classes))

    def forward(self, pixels):
        return self.classifier(self.features((pixels - self.mean) / self.std))


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """A batch of uint8 NCHW images, each zero-padded by `pad`, cropped back at a random offset
    and flipped with probability ½ (batched indexing, no per-image loop)."""
    size, count = images.shape[-1], images.shape[0]
    padded = F.pad(images, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (count, 2), generator=generator)
    span = torch.arange(size)
    rows = (offsets[:, 0:1] + span)[:, None, :, None]
    cols = (offsets[:, 1:2] + span)[:, None, None, :]
    crops = padded[torch.arange(count)[:, None, None, None], torch.arange(3)[None, :, None, None],
                   rows, cols]
    flip = torch.rand(count, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], crops.flip(3), crops)


def one_cycle(step: int, total: int, warmup: int) -> float:
    """The learning rate's factor: up linearly over `warmup` steps, then down to 0 at `total`."""
    rise = step / warmup if warmup else 1.0
    return max(0.0, min(rise, (total - step) / (total - warmup), 1.0))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-subset", type=int, help="the first N training images (a check)")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--float32", action="store_true", help="no bfloat16 autocast")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    x_train, y_train, x_test, y_test = load_cifar(args.data_dir)
    order = np.random.RandomState(args.seed).permutation(len(x_train))
    train_index, val_index = order[VALIDATION:][:args.train_subset], order[:VALIDATION]
    mean = x_train[train_index].reshape(-1, 3).mean(0)
    std = x_train[train_index].reshape(-1, 3).std(0)
    as_nchw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    train_x, train_y = as_nchw(x_train[train_index]), torch.from_numpy(y_train[train_index])
    val_x, val_y = as_nchw(x_train[val_index]), torch.from_numpy(y_train[val_index])
    test_x, test_y = as_nchw(x_test), torch.from_numpy(y_test)

    model = FastAlexNet(mean.tolist(), std.tolist()).to(memory_format=torch.channels_last)
    # The last partial batch dropped, unless it is the only one (a check on a few images).
    steps_per_epoch = max(1, len(train_x) // args.batch_size)
    images_per_epoch = min(len(train_x), steps_per_epoch * args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = round(0.2 * total)  # `fast`'s 1.2 of 6 epochs
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9,
                                weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                 lambda step: one_cycle(step, total, warmup))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.float32)

    def train_step(images, labels):
        with autocast:
            loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    def predict(images):
        with torch.no_grad(), autocast:
            return model(images).float().softmax(-1)

    if args.compile:
        train_step, predict = torch.compile(train_step), torch.compile(predict)

    def probabilities(images, flip_tta):
        model.eval()
        out = []
        for start in range(0, len(images), 500):
            batch = images[start:start + 500].float().contiguous(
                memory_format=torch.channels_last)
            p = predict(batch)
            if flip_tta:
                p = (p + predict(batch.flip(3).contiguous(memory_format=torch.channels_last))) / 2
            out.append(p)
        return torch.cat(out)

    setup = time.perf_counter() - START
    train_seconds = 0.0
    for epoch in range(args.epochs):
        model.train()
        begin = time.perf_counter()
        permutation = torch.randperm(len(train_x), generator=generator)
        losses = []
        for step in range(steps_per_epoch):
            index = permutation[step * args.batch_size:(step + 1) * args.batch_size]
            images = augment(train_x[index], generator).float().contiguous(
                memory_format=torch.channels_last)
            losses.append(train_step(images, train_y[index]).detach())
            schedule.step()
        seconds = time.perf_counter() - begin
        train_seconds += seconds
        val_accuracy = (probabilities(val_x, False).argmax(1) == val_y).float().mean().item()
        print(json.dumps({"epoch": epoch + 1, "seconds": round(seconds, 1),
                          "images_per_second": round(images_per_epoch / seconds),
                          "loss": round(torch.stack(losses).float().mean().item(), 4),
                          "val_accuracy": round(val_accuracy, 4)}), flush=True)
    tta = probabilities(test_x, True)
    single = probabilities(test_x, False)
    print(json.dumps({
        "benchmark": "torch_fast", "epochs": args.epochs, "batch_size": args.batch_size,
        "compile": args.compile, "bfloat16": not args.float32, "threads": args.threads,
        "test_accuracy": round((tta.argmax(1) == test_y).float().mean().item(), 4),
        "test_accuracy_single_view": round((single.argmax(1) == test_y).float().mean().item(), 4),
        "train_seconds": round(train_seconds, 1), "setup_seconds": round(setup, 1),
        "images_per_second": round(images_per_epoch * args.epochs
                                   / train_seconds),
        "wall_seconds": round(time.perf_counter() - START, 1), "torch": torch.__version__,
        "machine": platform.node(), "processor": platform.processor(),
        "date": time.strftime("%Y-%m-%d")}), flush=True)


if __name__ == "__main__":
    main()
