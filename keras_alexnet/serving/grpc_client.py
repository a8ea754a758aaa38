"""A client for the exported model under TensorFlow Serving's gRPC API (port 8500).

`predict_grpc` sends a `tensorflow.serving.PredictRequest` through `tensorflow-serving-api`,
installed with `pip install '.[serving]'` from the repository root (or `pip install
tensorflow-serving-api`), and checks the answer as the REST client (`serving.client`) does.

Example:

>>> images = np.zeros((2, 32, 32, 3), np.uint8)
>>> predictions = predict_grpc("localhost:8500", "alexnet_cifar10", images)
>>> predictions[0].class_name
'frog'
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from keras_alexnet.config import check_timeout
from keras_alexnet.data.cifar10 import IMAGE_SHAPE, NUM_CLASSES
from keras_alexnet.errors import ServingError
from keras_alexnet.serving.client import (
    Prediction,
    answer_limit,
    check_encoded_images,
    check_images,
    predictions_from_outputs,
)
from keras_alexnet.serving.signatures import (
    IMAGE_BYTES_INPUT,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_INPUT,
    OUTPUTS,
    SERVING_SIGNATURE,
)


def grpc_request(model_name: str, images: Union[np.ndarray, Sequence[bytes]],
                 version: Optional[int] = None, image_shape: Sequence[int] = IMAGE_SHAPE):
    """A gRPC `PredictRequest`: uint8 images `[N, *image_shape]` go to `serving_default`, a
    list of encoded PNG, JPEG or BMP images to `classify_image_bytes`."""
    predict_pb2, _, tf = _grpc_modules()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    if version is not None:
        request.model_spec.version.value = version
    if isinstance(images, np.ndarray):
        check_images(images, image_shape)
        request.model_spec.signature_name = SERVING_SIGNATURE
        request.inputs[IMAGES_INPUT].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    else:
        check_encoded_images(images)
        request.model_spec.signature_name = IMAGE_BYTES_SIGNATURE
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(list(images),
                                                                        dtype=tf.string))
    return request


def predict_grpc(target: str, model_name: str, images: Union[np.ndarray, Sequence[bytes]],
                 version: Optional[int] = None, timeout: float = 10.0,
                 num_classes: int = NUM_CLASSES,
                 image_shape: Sequence[int] = IMAGE_SHAPE) -> list[Prediction]:
    """Sends `grpc_request(model_name, images, version, image_shape)` to TF Serving's gRPC port
    (e.g. `localhost:8500`) and returns one `Prediction` per image.

    The answer may be at most `answer_limit(N)` bytes for N images, and is checked as
    `serving.client.parse_predictions` checks a REST answer.

    Args:
        target: The server's `host:port`.
        model_name: TF Serving's `--model_name`.
        images: uint8 pixels `[N, *image_shape]`, or a list of encoded PNG, JPEG or BMP images.
        version: A model version; `None` lets TF Serving pick its newest.
        timeout: Seconds the call may take.
        num_classes: The classes the model answers (CIFAR-10's 10 unless given).
        image_shape: The model's input, `(224, 224, 3)` for the paper network's export.

    Raises:
        ConfigError: `timeout` is not a positive finite number.
        ServingError: `tensorflow-serving-api` is missing, or the call fails (unreachable server,
            unknown model, timeout, bad input, an answer too large), with gRPC's status code and
            details, or the answer is not one valid prediction per image.
    """
    _, service, tf = _grpc_modules()
    import grpc  # installed with tensorflow-serving-api

    check_timeout(timeout)
    request = grpc_request(model_name, images, version, image_shape)
    options = [("grpc.max_receive_message_length", answer_limit(len(images), num_classes))]
    with grpc.insecure_channel(target, options=options) as channel:
        try:
            response = service.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"TF Serving gRPC at {target}: {error.code().name}: "
                               f"{error.details()}") from error
    outputs = {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}
    if set(outputs) != set(OUTPUTS):
        raise ServingError(f"unexpected TF Serving answer: outputs {sorted(outputs)}")
    return predictions_from_outputs(outputs, len(images), num_classes)


def _grpc_modules():
    try:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ServingError("gRPC needs tensorflow-serving-api: pip install "
                           "tensorflow-serving-api") from error
    return predict_pb2, prediction_service_pb2_grpc, tf
