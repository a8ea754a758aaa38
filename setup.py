"""Installs keras_alexnet and the `keras-alexnet` command."""

import re

from setuptools import find_packages, setup

# The one place the version is written is the package itself.
with open("keras_alexnet/version.py", encoding="utf-8") as version:
    VERSION = re.search(r'^__version__ = "([^"]+)"', version.read(), re.M).group(1)

setup(
    name="keras_alexnet",
    version=VERSION,
    description="The seed blog's CIFAR-10 AlexNet in Keras 3: train, evaluate, export, serve.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_alexnet", "keras_alexnet.*"]),
    # The shipped presets (trained models, one directory each) and the time budget's measured
    # frontier.
    package_data={"keras_alexnet": ["pretrained/*/*.json", "pretrained/*/*.h5",
                                    "config/frontier.json"]},
    # Keras 3.13 (below) needs Python 3.11 or newer.
    python_requires=">=3.11",
    install_requires=[
        # Each lower bound is the oldest release CI tests (the oldest stack .ci/run installs);
        # no upper bounds: CI tests the newest releases too. Keras 3.13 is Colab's.
        "keras>=3.13",
        "numpy>=1.26",
        # Older releases pin protobuf below 6, which tensorflow-datasets' metadata protos
        # (tensorflow-metadata 1.21) need: `import tensorflow_datasets` fails beside them.
        "tensorflow>=2.20",
        "tensorflow-datasets",
        # tensorflow-datasets imports it to build CIFAR-10 but declares it only for Python < 3.9.
        "importlib_resources",
        "matplotlib",
        # Presets store their kernels in float16 (Keras installs it too).
        "h5py",
    ],
    extras_require={
        # gRPC client for TF Serving (keras_alexnet.serving.grpc_client.predict_grpc).
        "serving": ["tensorflow-serving-api"],
        # Presets on the Hugging Face Hub (hf://) or Kaggle (kaggle://).
        "hub": ["huggingface_hub", "kagglehub"],
        # The JAX backend (KERAS_BACKEND=jax): on-device augmentation without TensorFlow.
        "jax": ["jax>=0.4.34"],
        # TensorBoard logs (tensorboard=True); TensorFlow 2.21 no longer installs it.
        "tensorboard": ["tensorboard"],
        # LiteRT's interpreter, to run `export --format litert` files (TensorFlow writes them).
        "litert": ["ai-edge-litert"],
        # `export --format onnx`: the converter and ONNX Runtime.
        "onnx": ["tf2onnx", "onnx", "onnxruntime"],
        # `keras-alexnet demo`, the browser page (keras_alexnet.demo).
        "demo": ["gradio>=5"],
        # Selenium drives headless Chromium in the demo's browser tests.
        "test": ["pytest", "pytest-xdist", "nbclient", "nbformat", "ipykernel",
                 "tensorflow-serving-api", "jax", "tensorboard", "ruff", "ai-edge-litert",
                 "tf2onnx", "onnx", "onnxruntime", "gradio>=5", "selenium"],
    },
    entry_points={"console_scripts": ["keras-alexnet=keras_alexnet.cli:main"]},
)
