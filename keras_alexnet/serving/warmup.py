"""TF Serving's SavedModel warm-up: requests TF Serving runs when it loads a version, before it
serves it, so that the first client does not wait for the model's first call.

The file is `assets.extra/tf_serving_warmup_requests`, a TFRecord of
`tensorflow.serving.PredictionLog` protos (TF Serving's "SavedModel Warmup" guide), read when the
server runs with `--enable_model_warmup` (its default). It holds one `predict_log` per signature:
`serving_default` with one black image, `classify_image_bytes` with one black PNG of the model's
size. The protos are written here field by field in protobuf's wire format, so exporting needs
neither `tensorflow-serving-api` nor anything beyond TensorFlow.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

WARMUP_FILE = "tf_serving_warmup_requests"

# Field numbers of tensorflow_serving/apis/{prediction_log,predict,model}.proto.
_PREDICTION_LOG_PREDICT_LOG = 6
_PREDICT_LOG_REQUEST = 1
_PREDICT_REQUEST_MODEL_SPEC, _PREDICT_REQUEST_INPUTS = 1, 2
_MODEL_SPEC_NAME, _MODEL_SPEC_SIGNATURE_NAME = 1, 3
_MAP_KEY, _MAP_VALUE = 1, 2


def write_warmup_requests(path: str, model_name: str, image_shape: Sequence[int],
                          signatures: dict[str, tuple[str, str]]) -> None:
    """Writes the warm-up TFRecord at `path`: one request per signature.

    Args:
        path: The file (`<version>/assets.extra/tf_serving_warmup_requests`).
        model_name: The model's name in the requests (TF Serving's `--model_name`).
        image_shape: The model's `[S, S, 3]` input.
        signatures: Each signature's name -> (its input's name, `"pixels"` or `"encoded"`).
    """
    import tensorflow as tf

    black = np.zeros((1, *image_shape), np.uint8)
    inputs = {"pixels": tf.make_tensor_proto(black, dtype=tf.uint8),
              "encoded": tf.make_tensor_proto([tf.io.encode_png(black[0]).numpy()],
                                              dtype=tf.string)}
    with tf.io.TFRecordWriter(path) as writer:
        for signature, (input_name, kind) in signatures.items():
            writer.write(prediction_log(model_name, signature, input_name,
                                        inputs[kind].SerializeToString()))


def prediction_log(model_name: str, signature: str, input_name: str, tensor: bytes) -> bytes:
    """A serialized `PredictionLog` whose `predict_log.request` sends the serialized
    `TensorProto` `tensor` as input `input_name` of `model_name`'s `signature`."""
    model_spec = (_field(_MODEL_SPEC_NAME, model_name.encode())
                  + _field(_MODEL_SPEC_SIGNATURE_NAME, signature.encode()))
    entry = _field(_MAP_KEY, input_name.encode()) + _field(_MAP_VALUE, tensor)
    request = _field(_PREDICT_REQUEST_MODEL_SPEC, model_spec) + _field(_PREDICT_REQUEST_INPUTS,
                                                                       entry)
    return _field(_PREDICTION_LOG_PREDICT_LOG, _field(_PREDICT_LOG_REQUEST, request))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2: bytes, strings, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    """`value` as a protobuf base-128 varint."""
    encoded = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        encoded.append(low | (0x80 if value else 0))
        if not value:
            return bytes(encoded)
