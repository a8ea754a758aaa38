#!/usr/bin/env bash
# Issue 5's GPU comparison, for the `device` tool: keras_alexnet on the Keras JAX backend (there is
# no TensorFlow there) and the PyTorch reference, on the same GPU, in the same call.
#
# Here, once:  bash ../shared/tools/device_prep.sh /path/to/venv/bin/python
# Device call 1 (carry [".whl", ".devdata/a"]):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
#   python3 .devdata/a/cifar_webp.py unpack .devdata/a /root/cifar-10-batches-py
# Device call 2, right after (carry [".devdata/b"], timeout_s 600):
#   python3 .devdata/b/cifar_webp.py unpack .devdata/b /root/cifar-10-batches-py &&
#   bash benchmarks/gpu_run.sh /root/cifar-10-batches-py
#
# Prints JSON lines: train_step (batch 128 and 512, float32 and mixed; then the fit loop's own
# ceiling with a trivial network), seed_recipe (49 epochs,
# validation and test, wall time, test accuracy; without the per-epoch ~190 MB backup and
# best.keras writes), seed_torch.py's per-epoch lines and summary, then seed_recipe with them.
set -uo pipefail
data=${1:-/root/cifar-10-batches-py}
export PYTHONPATH=/tmp/site:$PWD:${PYTHONPATH:-} KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, keras; print(jax.__version__, keras.__version__, jax.devices())"
python3 benchmarks/train_step.py --data-dir "$data" --steps 200
python3 benchmarks/train_step.py --data-dir "$data" --steps 300 --network trivial --batch-sizes 128
python3 benchmarks/seed_recipe.py --data-dir "$data" --checkpoint-every 0
python3 .devdata/b/seed_torch.py --data "$data" --pipeline loader
python3 benchmarks/seed_recipe.py --data-dir "$data"   # last: the 600 s call limit may cut it
