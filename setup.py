"""Installs keras_alexnet and the `keras-alexnet` command."""

from setuptools import find_packages, setup

setup(
    name="keras_alexnet",
    version="0.1.0",
    description="The seed blog's CIFAR-10 AlexNet in Keras 3: train, evaluate, export, serve.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_alexnet", "keras_alexnet.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.10",
        "numpy",
        "tensorflow>=2.16",
        "tensorflow-datasets",
        # tensorflow-datasets imports it to build CIFAR-10 but declares it only for Python < 3.9.
        "importlib_resources",
        "matplotlib",
    ],
    extras_require={
        # gRPC client for TF Serving (keras_alexnet.serving.predict_grpc).
        "serving": ["tensorflow-serving-api"],
        # The JAX backend (KERAS_BACKEND=jax): on-device augmentation without TensorFlow.
        "jax": ["jax"],
        "test": ["pytest", "nbclient", "nbformat", "ipykernel", "tensorflow-serving-api", "jax",
                 "ruff"],
    },
    entry_points={"console_scripts": ["keras-alexnet=keras_alexnet.cli:main"]},
)
