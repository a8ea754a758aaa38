"""A client for the exported model under TensorFlow Serving's REST API (and, optionally, gRPC).

REST: `POST {server}/v1/models/{model_name}[/versions/{version}]:predict` with a JSON body in the
"row" format, `{"signature_name": …, "instances": [ {input_name: value}, … ]}`; binary values (the
encoded images of `classify_image_bytes`) travel as `{"b64": "<base64>"}`. The answer is
`{"predictions": [ {output_name: value}, … ]}`, or `{"error": "<message>"}` with an HTTP error
status.

gRPC (port 8500): `serving.grpc_client.predict_grpc` sends the same requests through
`tensorflow-serving-api`.

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
import contextlib
import dataclasses
import http.client
import json
import math
import socket
import threading
import urllib.parse
from typing import Optional, Sequence

import numpy as np

from keras_alexnet.config import check_timeout
from keras_alexnet.data.cifar10 import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES
from keras_alexnet.errors import ImageError, ServingError
from keras_alexnet.serving.signatures import (
    IMAGE_BYTES_INPUT,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_INPUT,
    OUTPUTS,
    SERVING_SIGNATURE,
)
from keras_alexnet.utils.image_files import FORMATS, image_format


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


def images_request(images: np.ndarray, image_shape: Sequence[int] = IMAGE_SHAPE) -> dict:
    """The `serving_default` request body for uint8 images `[N, *image_shape]` (the model's
    input: 32×32×3 for the CIFAR network, 224×224×3 for the paper's)."""
    check_images(images, image_shape)
    return {"signature_name": SERVING_SIGNATURE,
            "instances": [{IMAGES_INPUT: image.tolist()} for image in images]}


def image_bytes_request(encoded_images: Sequence[bytes]) -> dict:
    """The `classify_image_bytes` request body for encoded PNG, JPEG or BMP images."""
    check_encoded_images(encoded_images)
    return {"signature_name": IMAGE_BYTES_SIGNATURE,
            "instances": [{IMAGE_BYTES_INPUT: {"b64": base64.b64encode(data).decode("ascii")}}
                          for data in encoded_images]}


def check_images(images: np.ndarray, image_shape: Sequence[int] = IMAGE_SHAPE) -> None:
    """Raises `ImageError` unless `images` are uint8 of shape `[N, *image_shape]`."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != tuple(image_shape):
        raise ImageError(f"images must be uint8 of shape [N, {', '.join(map(str, image_shape))}]"
                         f", got {images.dtype} {list(images.shape)}")


def check_encoded_images(encoded_images: Sequence[bytes]) -> None:
    """Raises `ImageError` naming the first of `encoded_images` that is not PNG, JPEG or BMP."""
    for index, data in enumerate(encoded_images):
        check_encoded_image(data, f"image {index}")


def check_encoded_image(data: bytes, name: str) -> None:
    """Raises `ImageError` unless `data` begins as a file of a format the exported model
    decodes (`utils.image_files.image_format`)."""
    if image_format(data) is None:
        raise ImageError(f"{name} is not a {FORMATS} image")


def predictions_from_outputs(outputs: dict, count: Optional[int] = None,
                             num_classes: int = NUM_CLASSES) -> list[Prediction]:
    """One `Prediction` per image from a signature's batched outputs (arrays or tensors),
    checked as `parse_predictions` checks an answer (`count`: the images sent)."""
    columns = [np.asarray(outputs[name]) for name in OUTPUTS]
    rows = [{"probabilities": probabilities.tolist(), "class_id": class_id.item(),
             "class_name": name.decode(errors="replace")}
            for probabilities, class_id, name in zip(*columns)]
    return parse_predictions({"predictions": rows}, count, num_classes)


def parse_predictions(body, count: Optional[int] = None,
                      num_classes: int = NUM_CLASSES) -> list[Prediction]:
    """Reads a TF Serving `predict` answer, checked: one row per image sent (`count`, when
    given), each with `num_classes` (CIFAR-10's 10 unless given) finite probabilities in [0, 1]
    summing to 1, and the `class_id` of the largest. Raises `ServingError` for an
    `{"error": …}` body or any other answer."""
    if isinstance(body, dict) and "error" in body:
        raise ServingError(f"TF Serving: {str(body['error'])[:500]}")
    rows = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise ServingError(f"unexpected TF Serving answer: {json.dumps(body)[:200]}")
    if count is not None and len(rows) != count:
        raise ServingError(f"TF Serving answered {len(rows)} predictions for {count} "
                           f"image{'' if count == 1 else 's'}")
    return [_prediction(row, index, num_classes) for index, row in enumerate(rows)]


PROBABILITY_SUM_TOLERANCE = 1e-3


def _prediction(row, index: int, num_classes: int) -> Prediction:
    """The `Prediction` of answer row `index`; `ServingError` saying what is wrong with it."""
    def wrong(what: str) -> ServingError:
        return ServingError(f"unexpected TF Serving answer: prediction {index} {what}")

    if not isinstance(row, dict):
        raise wrong("is not an object")
    probabilities, class_id = row.get("probabilities"), row.get("class_id")
    if (not isinstance(probabilities, list) or len(probabilities) != num_classes
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool)
                       for p in probabilities)):
        raise wrong(f"has {len(probabilities) if isinstance(probabilities, list) else 'no'} "
                    f"probabilities, not one for each of the {num_classes} class names")
    values = np.asarray(probabilities, np.float64)
    if (not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1
            or abs(values.sum() - 1) > PROBABILITY_SUM_TOLERANCE):
        raise wrong("has probabilities that are not a distribution")
    if (not isinstance(class_id, int) or isinstance(class_id, bool)
            or not 0 <= class_id < num_classes or values[class_id] != values.max()):
        raise wrong(f"has class_id {class_id!r}, not that of its largest probability")
    if not isinstance(row.get("class_name"), str):
        raise wrong("has no class_name")
    return Prediction(tuple(float(p) for p in values), class_id, row["class_name"])


def predict_url(server: str, model_name: str, version: Optional[int] = None) -> str:
    """The REST `predict` URL of a model (its newest version unless `version` is given)."""
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "")
    return server.rstrip("/") + path + ":predict"


ANSWER_BYTES_PER_IMAGE = 4096  # a row of 10 probabilities, indented: ~0.5 kB
ANSWER_BYTES_BASE = 65536  # and an error message


def answer_limit(count: int, num_classes: int = NUM_CLASSES) -> int:
    """The most bytes read of TF Serving's answer for `count` images of `num_classes` classes:
    `ANSWER_BYTES_PER_IMAGE` for every 10 classes of each image."""
    per_image = ANSWER_BYTES_PER_IMAGE * math.ceil(num_classes / NUM_CLASSES)
    return ANSWER_BYTES_BASE + per_image * count


def predict(server: str, model_name: str, payload: dict, version: Optional[int] = None,
            timeout: float = 10.0, num_classes: int = NUM_CLASSES) -> list[Prediction]:
    """Sends a request body to TF Serving's REST API and returns one `Prediction` per instance.

    The whole exchange (connecting, sending, the answer's last byte) takes at most `timeout`
    seconds, at most `answer_limit(N)` bytes of the answer are read for N instances, and the
    answer is checked (`parse_predictions`).

    Args:
        server: Base URL, e.g. `http://localhost:8501`.
        model_name: TF Serving's `--model_name`.
        payload: A body from `images_request` or `image_bytes_request`.
        version: A model version; `None` lets TF Serving pick its newest.
        timeout: Seconds the whole request may take.
        num_classes: The classes the model answers (CIFAR-10's 10 unless given).

    Raises:
        ConfigError: `timeout` is not a positive finite number.
        ServingError: The server cannot be reached, takes longer than `timeout`, answers with an
            error, too much, or anything but one valid prediction per instance.
    """
    check_timeout(timeout)
    url = predict_url(server, model_name, version)
    count = len(payload["instances"])
    status, data = _post(url, json.dumps(payload).encode("utf-8"), timeout,
                         answer_limit(count, num_classes))
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # too deep a nesting raises RecursionError
        body = None
    if status != 200:
        message = body.get("error") if isinstance(body, dict) else None
        raise ServingError(f"TF Serving answered HTTP {status}"
                           + (f": {str(message)[:500]}" if message else ""))
    if body is None:
        raise ServingError(f"TF Serving at {url} did not answer with JSON")
    return parse_predictions(body, count, num_classes)


def _post(url: str, body: bytes, timeout: float, limit: int) -> tuple[int, bytes]:
    """POSTs JSON `body` to `url`; returns the status and the answer, which may be at most
    `limit` bytes, all within `timeout` seconds (at the deadline the socket is shut, which ends
    any read in progress)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServingError(f"not an http(s) URL: {url}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout)
    late = ServingError(f"TF Serving at {url} did not answer within {timeout:g} s")
    expired = threading.Event()
    deadline = threading.Timer(timeout, _shut, (connection, expired))
    deadline.start()
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.length is not None and response.length > limit:
            raise ServingError(f"TF Serving at {url} answered more than {limit} bytes")
        data = response.read(limit + 1)
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set() or isinstance(error, TimeoutError):
            raise late from error
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ServingError(f"cannot reach TF Serving at {url}: {reason}") from error
    finally:
        deadline.cancel()
        connection.close()
    if expired.is_set():  # the shut socket ended the read early
        raise late
    if len(data) > limit:
        raise ServingError(f"TF Serving at {url} answered more than {limit} bytes")
    if response.length:  # bytes its Content-Length announced that never came
        raise ServingError(f"TF Serving at {url} cut its answer short")
    return response.status, data


def _shut(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    expired.set()
    if connection.sock is not None:
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)
