"""The precision probe measured for real, on this host as it is and made into hosts of other
kinds: oneDNN (TensorFlow's CPU kernels) capped below the bfloat16 dot products
(`ONEDNN_MAX_CPU_ISA=AVX512_CORE`: AVX-512 without AVX512-BF16, so bfloat16 is converted to and
from float32 around every product, as on the many CPUs without it) and fewer cores (`taskset`).
(A cap at AVX2 crashed TensorFlow 2.21's bfloat16 product on this machine.)

    python benchmarks/precision_probe.py [--recipe fast] [--batch-size 256]

One JSON line per host kind: the float32 and bfloat16 training images/s the probe measured with
the recipe's network at its batch size, the precision `mixed_precision="auto"` chose, the seconds
the probe took, and the matrix-product peaks of the same kind of host. Not a test: the numbers
are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import cpu_model, emit, matmul_peaks  # noqa: E402

HOST_KINDS = {
    "as is": ({}, ()),
    "no AVX512-BF16": ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, ()),
    "one core": ({}, ("taskset", "-c", "0")),
}

PROBE_CODE = """
import json, sys, time
start = time.perf_counter()
from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import NUM_CLASSES
from keras_alexnet.training import host_probe
from keras_alexnet.training.fit_setup import precision_probe
from keras_alexnet.training.performance import usable_cores, use_cpu_threads
recipe, batch_size, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3]
use_cpu_threads(None)
config = TrainConfig.from_recipe(recipe, batch_size=batch_size)
probe = precision_probe(config, NUM_CLASSES, train_images=10**6)
begun = time.perf_counter()
choice, rates, cached = host_probe.choose_precision(probe.subject, probe.measure, usable_cores(),
                                                    cache)
print(json.dumps({"choice": choice, "images_per_second": {k: round(v, 1) for k, v in rates.items()},
                  "probe_seconds": round(time.perf_counter() - begun, 1)}))
"""


def probe(recipe: str, batch_size: int, environment: dict, prefix: tuple) -> dict:
    """The probe in a fresh process on one kind of host (its own empty cache)."""
    with tempfile.TemporaryDirectory() as cache:
        output = subprocess.run(
            [*prefix, sys.executable, "-c", PROBE_CODE, recipe, str(batch_size),
             os.path.join(cache, "probes.json")],
            env={**os.environ, **environment}, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--kinds", nargs="+", default=list(HOST_KINDS), choices=list(HOST_KINDS))
    args = parser.parse_args(argv)
    for kind in args.kinds:
        environment, prefix = HOST_KINDS[kind]
        peaks = matmul_peaks(prefix, environment)
        emit("precision_probe", host=kind, recipe=args.recipe, batch_size=args.batch_size,
             **probe(args.recipe, args.batch_size, environment, prefix),
             matmul_peak_gflops=peaks, cpu=cpu_model())


if __name__ == "__main__":
    main()
