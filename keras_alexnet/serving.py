"""A client for the exported model under TensorFlow Serving's REST API (and, optionally, gRPC).

REST: `POST {server}/v1/models/{model_name}[/versions/{version}]:predict` with a JSON body in the
"row" format, `{"signature_name": …, "instances": [ {input_name: value}, … ]}`; binary values (the
encoded images of `classify_image_bytes`) travel as `{"b64": "<base64>"}`. The answer is
`{"predictions": [ {output_name: value}, … ]}`, or `{"error": "<message>"}` with an HTTP error
status.

gRPC (port 8500): `predict_grpc` sends a `tensorflow.serving.PredictRequest` through
`tensorflow-serving-api`, installed with `pip install '.[serving]'` from the repository root
(or `pip install tensorflow-serving-api`).

TF Serving has no package for the machines this project is built on, so the tests check these
payloads against the formats of TF Serving's REST API documentation and run the HTTP and gRPC
handling against loopback test doubles; a real server is started in the Colab notebook.

Example:

>>> payload = image_bytes_request([open("cat.png", "rb").read()])
>>> predictions = predict("http://localhost:8501", "alexnet_cifar10", payload)
>>> predictions[0].class_name, predictions[0].probability
('cat', 0.91)
"""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.error
import urllib.request
from typing import Optional, Sequence, Union

import numpy as np

from keras_alexnet.data import CLASS_NAMES, IMAGE_SHAPE
from keras_alexnet.errors import ImageError, ServingError
from keras_alexnet.export import (
    IMAGE_BYTES_INPUT,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_INPUT,
    OUTPUTS,
    SERVING_SIGNATURE,
)
from keras_alexnet.image_bytes import JPEG_MAGIC, PNG_MAGIC


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One image's result: the signature's outputs."""

    probabilities: tuple[float, ...]
    class_id: int
    class_name: str

    @property
    def probability(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.class_id]

    def top_k(self, k: int, class_names: Sequence[str] = CLASS_NAMES) -> list[tuple[str, float]]:
        """The `k` most probable `(class_name, probability)` pairs, most probable first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(class_names[i], float(self.probabilities[i])) for i in order]


def images_request(images: np.ndarray) -> dict:
    """The `serving_default` request body for uint8 images `[N, 32, 32, 3]`."""
    check_images(images)
    return {"signature_name": SERVING_SIGNATURE,
            "instances": [{IMAGES_INPUT: image.tolist()} for image in images]}


def image_bytes_request(encoded_images: Sequence[bytes]) -> dict:
    """The `classify_image_bytes` request body for encoded PNG or JPEG images."""
    check_encoded_images(encoded_images)
    return {"signature_name": IMAGE_BYTES_SIGNATURE,
            "instances": [{IMAGE_BYTES_INPUT: {"b64": base64.b64encode(data).decode("ascii")}}
                          for data in encoded_images]}


def check_images(images: np.ndarray) -> None:
    """Raises `ImageError` unless `images` are uint8 of shape `[N, 32, 32, 3]`."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ImageError(f"images must be uint8 of shape [N, 32, 32, 3], got {images.dtype} "
                         f"{list(images.shape)}")


def check_encoded_images(encoded_images: Sequence[bytes]) -> None:
    """Raises `ImageError` naming the first of `encoded_images` that is not PNG or JPEG."""
    for index, data in enumerate(encoded_images):
        check_encoded_image(data, f"image {index}")


def check_encoded_image(data: bytes, name: str) -> None:
    """Raises `ImageError` unless `data` starts like a PNG or JPEG file."""
    if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
        raise ImageError(f"{name} is not a PNG or JPEG image")


def predictions_from_outputs(outputs: dict) -> list[Prediction]:
    """One `Prediction` per image from a signature's batched outputs (arrays or tensors)."""
    columns = [np.asarray(outputs[name]) for name in OUTPUTS]
    return [Prediction(tuple(float(p) for p in probabilities), int(class_id), name.decode())
            for probabilities, class_id, name in zip(*columns)]


def parse_predictions(body: dict) -> list[Prediction]:
    """Reads a TF Serving `predict` answer; raises `ServingError` for an `{"error": …}` body."""
    if "error" in body:
        raise ServingError(f"TF Serving: {body['error']}")
    try:
        return [Prediction(tuple(float(p) for p in row["probabilities"]), int(row["class_id"]),
                           str(row["class_name"])) for row in body["predictions"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ServingError(f"unexpected TF Serving answer: {json.dumps(body)[:200]}") from error


def predict_url(server: str, model_name: str, version: Optional[int] = None) -> str:
    """The REST `predict` URL of a model (its newest version unless `version` is given)."""
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "")
    return server.rstrip("/") + path + ":predict"


def predict(server: str, model_name: str, payload: dict, version: Optional[int] = None,
            timeout: float = 10.0) -> list[Prediction]:
    """Sends a request body to TF Serving's REST API and returns one `Prediction` per instance.

    Args:
        server: Base URL, e.g. `http://localhost:8501`.
        model_name: TF Serving's `--model_name`.
        payload: A body from `images_request` or `image_bytes_request`.
        version: A model version; `None` lets TF Serving pick its newest.
        timeout: Seconds to wait for the answer.

    Raises:
        ServingError: The server cannot be reached, times out, or answers with an error.
    """
    url = predict_url(server, model_name, version)
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ServingError(_http_error_message(error)) from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise ServingError(f"cannot reach TF Serving at {url}: {reason}") from error
    except json.JSONDecodeError as error:
        raise ServingError(f"TF Serving at {url} did not answer with JSON") from error
    return parse_predictions(body)


def _http_error_message(error: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(error.read())["error"]
    except (ValueError, KeyError, TypeError):
        message = error.reason
    return f"TF Serving answered HTTP {error.code}: {message}"


def grpc_request(model_name: str, images: Union[np.ndarray, Sequence[bytes]],
                 version: Optional[int] = None):
    """A gRPC `PredictRequest`: uint8 images `[N, 32, 32, 3]` go to `serving_default`, a list
    of encoded PNG/JPEG images to `classify_image_bytes`."""
    predict_pb2, _, tf = _grpc_modules()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    if version is not None:
        request.model_spec.version.value = version
    if isinstance(images, np.ndarray):
        check_images(images)
        request.model_spec.signature_name = SERVING_SIGNATURE
        request.inputs[IMAGES_INPUT].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    else:
        check_encoded_images(images)
        request.model_spec.signature_name = IMAGE_BYTES_SIGNATURE
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(tf.make_tensor_proto(list(images),
                                                                        dtype=tf.string))
    return request


def predict_grpc(target: str, model_name: str, images: Union[np.ndarray, Sequence[bytes]],
                 version: Optional[int] = None, timeout: float = 10.0) -> list[Prediction]:
    """Sends `grpc_request(model_name, images)` to TF Serving's gRPC port (e.g. `localhost:8500`).

    Raises:
        ServingError: `tensorflow-serving-api` is missing, or the call fails (unreachable server,
            unknown model, timeout, bad input), with gRPC's status code and details.
    """
    _, service, tf = _grpc_modules()
    import grpc  # installed with tensorflow-serving-api

    request = grpc_request(model_name, images, version)
    with grpc.insecure_channel(target) as channel:
        try:
            response = service.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"TF Serving gRPC at {target}: {error.code().name}: "
                               f"{error.details()}") from error
    return predictions_from_outputs({name: tf.make_ndarray(tensor)
                                     for name, tensor in response.outputs.items()})


def _grpc_modules():
    try:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ServingError("gRPC needs tensorflow-serving-api: pip install "
                           "tensorflow-serving-api") from error
    return predict_pb2, prediction_service_pb2_grpc, tf
