"""The TF Serving client and `keras-alexnet predict`.

TF Serving cannot be installed on these machines, so `FakeTFServing` below is a TEST DOUBLE: a
loopback HTTP server that answers exactly as TF Serving's REST API documents (`:predict` in the row
format, `{"b64": …}` for binary inputs, `{"error": …}` bodies with HTTP error codes), computing its
answers with the real exported SavedModel. `FakeTFServingGrpc` is the same for the gRPC
PredictionService. Neither is part of the package.
"""

import base64
import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli, with_distinct_weights
from image_bytes_test import png_bomb
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import keras_alexnet
from keras_alexnet.models.build import build_model
from keras_alexnet.models.catalogue import DEFAULT_PRESET, SHIPPED_DIR, shipped_presets
from keras_alexnet.models.preset_files import save_to_preset
from keras_alexnet.serving import client, grpc_client
from keras_alexnet.serving.export import export_saved_model, load_saved_model
from keras_alexnet.serving.presets import preset_saved_model
from keras_alexnet.utils.download import keras_cache_dir


def png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def test_images():
    return np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def keras_model(test_images):
    """A model whose probabilities differ clearly between the test images."""
    return with_distinct_weights(build_model(seed=0), test_images)


@pytest.fixture(scope="module")
def export_dir(keras_model, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    export_saved_model(keras_model, str(base), "alexnet_cifar10")
    return str(base / "alexnet_cifar10")


def keras_probabilities(model, images):
    logits = model(images.astype("float32"), training=False)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits))


class FakeTFServing(BaseHTTPRequestHandler):
    """TEST DOUBLE of TF Serving's REST predict endpoint (see the module docstring)."""

    model_name = "alexnet_cifar10"
    signatures = {}
    delay = 0.0

    def do_POST(self):
        time.sleep(self.delay)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != f"/v1/models/{self.model_name}:predict":
            return self.answer(404,
                               {"error": f"Servable not found for request: Latest({self.path})"})
        name = body.get("signature_name", "serving_default")
        if name not in self.signatures:
            message = f"Serving signature name: \"{name}\" not found in signature def"
            return self.answer(400, {"error": message})
        if name == "serving_default":
            inputs = {"images": tf.constant([row["images"] for row in body["instances"]], tf.uint8)}
        else:
            inputs = {"image_bytes": tf.constant([base64.b64decode(row["image_bytes"]["b64"])
                                                  for row in body["instances"]])}
        out = self.signatures[name](**inputs)
        predictions = [{"probabilities": p.tolist(), "class_id": int(c), "class_name": n.decode()}
                       for p, c, n in zip(out["probabilities"].numpy(), out["class_id"].numpy(),
                                          out["class_name"].numpy())]
        self.answer(200, {"predictions": predictions})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(export_dir):
    FakeTFServing.signatures = {name: load_saved_model(export_dir, name)
                                for name in ("serving_default", "classify_image_bytes")}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeTFServing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_images_request_is_the_documented_row_format():
    image = np.arange(32 * 32 * 3, dtype=np.uint32).reshape(1, 32, 32, 3).astype(np.uint8)
    body = client.images_request(image)
    assert body["signature_name"] == "serving_default"
    assert len(body["instances"]) == 1 and body["instances"][0]["images"] == image[0].tolist()
    assert json.loads(json.dumps(body)) == body
    with pytest.raises(ValueError, match="uint8 of shape"):
        client.images_request(np.zeros((1, 28, 28, 3), np.uint8))


def test_image_bytes_request_carries_base64_as_documented():
    png = b"\x89PNG\r\n\x1a\n" + b"rest"
    assert client.image_bytes_request([png]) == {
        "signature_name": "classify_image_bytes",
        "instances": [{"image_bytes": {"b64": "iVBORw0KGgpyZXN0"}}],
    }
    with pytest.raises(ValueError, match="image 0 is not a PNG, JPEG or BMP"):
        client.image_bytes_request([b"GIF89a"])


def test_parse_predictions_reads_answers_and_raises_on_error_bodies():
    golden = {"predictions": [{"probabilities": [0.1] * 3 + [0.7] + [0.0] * 6, "class_id": 3,
                               "class_name": "cat"}]}
    [prediction] = client.parse_predictions(golden)
    assert (prediction.class_id, prediction.class_name) == (3, "cat")
    assert prediction.probability == pytest.approx(0.7)
    assert prediction.top_k(2)[0] == ("cat", pytest.approx(0.7))
    with pytest.raises(client.ServingError, match="TF Serving: Servable not found"):
        client.parse_predictions({"error": "Servable not found for request: Latest(x)"})
    with pytest.raises(client.ServingError, match="unexpected TF Serving answer"):
        client.parse_predictions({"outputs": {}})


@pytest.mark.parametrize("version, path", [(None, "/v1/models/m:predict"),
                                           (3, "/v1/models/m/versions/3:predict")])
def test_predict_posts_to_tf_servings_rest_path_of_the_model_and_version(version, path):
    """TF Serving's REST API: POST /v1/models/NAME[/versions/N]:predict, as the server reads
    the request line (the server's URL given with a trailing slash)."""
    request_lines = []

    def answer(connection):
        connection.sendall(http_answer(json.dumps({"predictions": [row()]}).encode()))

    server = ScriptedServer(answer, request_lines)
    try:
        (prediction,) = client.predict(server.url + "/", "m", {"instances": [[0]]}, version,
                                       timeout=10)
    finally:
        server.close()
    assert request_lines == [f"POST {path} HTTP/1.1"] and prediction.class_name == "cat"


def test_both_signatures_over_rest_match_the_keras_model(server, keras_model, test_images):
    expected = keras_probabilities(keras_model, test_images)
    assert len(set(expected.argmax(1))) > 1 and expected.max() < 0.999  # distinct, not saturated
    by_pixels = client.predict(server, "alexnet_cifar10", client.images_request(test_images))
    by_bytes = client.predict(server, "alexnet_cifar10",
                               client.image_bytes_request([png_bytes(i) for i in test_images]))
    for predictions in (by_pixels, by_bytes):
        np.testing.assert_allclose([p.probabilities for p in predictions], expected, atol=1e-5)
        assert [p.class_id for p in predictions] == expected.argmax(1).tolist()


def test_http_errors_unreachable_servers_and_timeouts_raise_serving_error(server, test_images):
    payload = client.images_request(test_images[:1])
    with pytest.raises(client.ServingError, match="HTTP 404: Servable not found"):
        client.predict(server, "resnet", payload)
    with pytest.raises(client.ServingError, match="HTTP 400: Serving signature name"):
        client.predict(server, "alexnet_cifar10", {**payload, "signature_name": "nope"})
    with pytest.raises(client.ServingError, match="cannot reach TF Serving"):
        client.predict("http://127.0.0.1:9", "alexnet_cifar10", payload, timeout=5)
    FakeTFServing.delay = 1.0
    try:
        with pytest.raises(client.ServingError, match="did not answer within 0.2 s"):
            client.predict(server, "alexnet_cifar10", payload, timeout=0.2)
    finally:
        FakeTFServing.delay = 0.0


class ScriptedServer:
    """A loopback server that reads one HTTP request and answers with `script(connection)`: what
    a broken or hostile server sends (a TEST DOUBLE, not TF Serving)."""

    def __init__(self, script, request_lines=None):
        self.script = script
        self.request_lines = [] if request_lines is None else request_lines
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        connection, _ = self.listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, body = request.split(b"\r\n\r\n", 1)
            self.request_lines.append(head.split(b"\r\n", 1)[0].decode())
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            while len(body) < length:
                body += connection.recv(65536)
            with contextlib.suppress(OSError):  # the client may hang up first
                self.script(connection)

    def close(self):
        self.listener.close()
        self.thread.join(timeout=60)


def http_answer(body: bytes, status="200 OK", length=None):
    length = len(body) if length is None else length
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + body


def row(probabilities=None, class_id=3, class_name="cat"):
    probabilities = probabilities or [0.05] * 3 + [0.55] + [0.05] * 6
    return {"probabilities": probabilities, "class_id": class_id, "class_name": class_name}


def test_an_answer_of_another_number_of_classes_is_read_when_that_number_is_given():
    probabilities = [0.5 / 999] * 1000
    probabilities[7] = 0.5 + 0.5 / 999
    body = {"predictions": [row(probabilities, class_id=7, class_name="n01")]}
    (prediction,) = client.parse_predictions(body, 1, num_classes=1000)
    assert prediction.class_id == 7 and len(prediction.probabilities) == 1000
    with pytest.raises(client.ServingError,
                       match="prediction 0 has 1000 probabilities, not one for each of the 10 "):
        client.parse_predictions(body, 1)  # CIFAR-10's ten unless told


def streamed_forever(connection):
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(10_000):  # up to 10 GB, far past any limit
        connection.sendall(b"100000\r\n" + b" " * 0x100000 + b"\r\n")


def one_byte_a_tenth_of_a_second(connection):
    for byte in http_answer(json.dumps({"predictions": [row()]}).encode()):
        connection.sendall(bytes([byte]))
        time.sleep(0.1)


def answers(body):
    return lambda connection: connection.sendall(
        http_answer(body if isinstance(body, bytes) else json.dumps(body).encode()))


@pytest.mark.parametrize("script, message", [
    (lambda c: c.sendall(http_answer(b"", length=10**9)), "answered more than 69632 bytes"),
    (streamed_forever, "answered more than 69632 bytes"),
    (one_byte_a_tenth_of_a_second, "did not answer within 2 s"),
    (answers({"predictions": []}), "TF Serving answered 0 predictions for 1 image"),
    (answers({"predictions": [row()] * 5000}), "answered more than 69632 bytes"),
    (answers({"predictions": [row()] * 2}), "TF Serving answered 2 predictions for 1 image"),
    (answers({"predictions": [row(class_id=4)]}),
     "prediction 0 has class_id 4, not that of its largest probability"),
    (answers({"predictions": [row(class_id=-1)]}), "prediction 0 has class_id -1"),
    (answers({"predictions": [row(class_id=True)]}), "prediction 0 has class_id True"),
    (answers(b'{"predictions": [{"probabilities": [NaN, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, '
             b'0.1], "class_id": 1, "class_name": "automobile"}]}'),
     "prediction 0 has probabilities that are not a distribution"),
    (answers({"predictions": [row([0.5] * 10)]}), "probabilities that are not a distribution"),
    (answers({"predictions": [row([0.1] * 12)]}),
     "prediction 0 has 12 probabilities, not one for each of the 10 "),
    (answers({"predictions": [row(class_name=None)]}), "prediction 0 has no class_name"),
    (answers(5), "unexpected TF Serving answer: 5"),
    (answers(b"[" * 60_000), "did not answer with JSON"),
    (lambda c: c.sendall(http_answer(b'{"predictions": [', length=100)), "cut its answer short"),
    (lambda c: c.sendall(b"garbage\r\n\r\n"), "cannot reach TF Serving"),
    (lambda c: c.sendall(http_answer(b"<html>Bad gateway</html>", "502 Bad Gateway")),
     "TF Serving answered HTTP 502"),
])
def test_a_wrong_too_large_or_too_slow_answer_is_one_serving_error(script, message):
    """Each answer here was printed as a result, ended in a traceback, took the client to 5.8 GB
    (1 GB body) or kept it waiting past its timeout; now each is one `ServingError`."""
    server = ScriptedServer(script)
    payload = client.image_bytes_request([b"\x89PNG\r\n\x1a\n"])
    try:
        with pytest.raises(client.ServingError, match=re.escape(message)):
            client.predict(server.url, "alexnet_cifar10", payload, timeout=2)
    finally:
        server.close()


def test_the_timeout_must_be_a_positive_finite_number():
    for timeout in (0, -1, float("inf"), float("nan"), "10"):
        with pytest.raises(ValueError, match="timeout must be a positive finite number"):
            client.predict("http://127.0.0.1:9", "m", {"instances": []}, timeout=timeout)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory, test_images):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for index, image in enumerate(test_images):
        paths.append(str(folder / f"image{index}.png"))
        with open(paths[-1], "wb") as file:
            file.write(png_bytes(image))
    return paths


@pytest.mark.slow
def test_predict_command_locally_and_over_rest(export_dir, image_files, server, test_images):
    expected = load_saved_model(export_dir)(images=tf.constant(test_images))["class_name"].numpy()
    local = run_cli("predict", *image_files, "--model", export_dir)
    assert local.returncode == 0, local.stderr
    lines = local.stdout.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == image_files
    assert [line.split(": ")[1].split()[0] for line in lines] == [n.decode() for n in expected]
    remote = run_cli("predict", *image_files, "--server", server, "--top-k", "3", "--json")
    assert remote.returncode == 0, remote.stderr
    results = json.loads(remote.stdout)
    assert [r["top"][0]["class_name"] for r in results] == [n.decode() for n in expected]
    assert all(len(r["top"]) == 3 for r in results)
    probabilities = [t["probability"] for t in results[0]["top"]]
    assert probabilities == sorted(probabilities, reverse=True)


@pytest.mark.slow
def test_predict_command_bad_input_is_one_line(export_dir, image_files, tmp_path, run_cli_here):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "broken.png").write_bytes(open(image_files[0], "rb").read()[:40])
    (tmp_path / "bomb.png").write_bytes(png_bomb(5000, 4000))
    (tmp_path / "eleven.txt").write_text("".join(f"class {i}\n" for i in range(11)))
    damaged = tmp_path / "damaged_preset"  # a shipped preset that lost its weights
    damaged.mkdir()
    for name in ("config.json", "metadata.json"):
        (damaged / name).write_bytes(open(os.path.join(SHIPPED_DIR, "alexnet_fast_cifar10",
                                                       name), "rb").read())
    cases = [
        (["predict", tmp_path / "notes.txt", "--model", export_dir],
         "notes.txt is not a PNG, JPEG or BMP"),
        (["predict", tmp_path / "empty.png", "--model", export_dir],
         "empty.png is not a PNG, JPEG or BMP"),
        (["predict", tmp_path / "missing.png", "--model", export_dir], "cannot read"),
        (["predict", tmp_path / "broken.png", "--model", export_dir],
         "broken.png does not end where its format says (cut short?)"),
        (["predict", tmp_path / "bomb.png", "--model", export_dir],
         "bomb.png declares 5000 × 4000 pixels, more than the limit of 16777216"),
        (["predict", image_files[0], "--model", tmp_path], "no SavedModel at"),
        (["predict", image_files[0], "--model", export_dir, "--class-names",
          tmp_path / "eleven.txt"], f"eleven.txt names 11 classes; the model {export_dir}"),
        (["predict", image_files[0], "--model", damaged],
         "damaged_preset' has no model.weights.h5"),
        (["predict", image_files[0], "--server", "http://127.0.0.1:9"], "cannot reach TF Serving"),
        (["predict", image_files[0], "--server", "http://127.0.0.1:9", "--timeout", "nan"],
         "--timeout must be a positive finite number of seconds, got nan"),
        (["predict", image_files[0], "--server", "http://127.0.0.1:9", "--timeout", "0"],
         "--timeout must be a positive finite number of seconds, got 0.0"),
    ]
    for index, (args, message) in enumerate(cases):
        # One in a fresh process, where TensorFlow's C++ side could add lines of its own.
        result = (run_cli if index == 3 else run_cli_here)(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert message in lines[0]


# In a fresh process, so that its peak memory is these reads' alone.
HOSTILE_FILES = r"""
import json, resource, sys, time
from keras_alexnet import cli

results = {}
for path in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    status = cli.main(["predict", path, "--server", "http://127.0.0.1:9"])
    results[path] = {"status": status, "seconds": time.perf_counter() - start,
                     "peak_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                        - before) / 1024}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_predict_checks_a_file_before_reading_it(tmp_path):
    """/dev/zero, a FIFO nobody writes to and a 20 GB sparse .png grew to gigabytes or hung
    before; each is now one error line, read no further than 64 MiB."""
    fifo, sparse = tmp_path / "pipe.png", tmp_path / "sparse.png"
    os.mkfifo(fifo)
    with open(sparse, "wb") as file:
        file.truncate(20 * 2 ** 30)
    process = subprocess.run([sys.executable, "-c", HOSTILE_FILES, "/dev/zero", fifo, sparse],
                             capture_output=True, text=True, timeout=300)
    results = json.loads(process.stdout.strip().splitlines()[-1])
    assert process.stderr.strip().splitlines() == [
        "keras-alexnet: error: /dev/zero is not a regular file",
        f"keras-alexnet: error: {fifo} is not a regular file",
        f"keras-alexnet: error: {sparse} is larger than 64 MiB, the most an image file may be"]
    assert all(result["status"] == 2 for result in results.values())
    assert all(result["peak_growth_mb"] < 100 for result in results.values())


class FakeTFServingGrpc(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TEST DOUBLE of TF Serving's gRPC PredictionService.Predict, answering with the real export.

    Built on the servicer that `tensorflow-serving-api` generates from TF Serving's own protos.
    """

    def __init__(self, signatures):
        self.signatures = signatures

    def Predict(self, request, context):
        import grpc

        if request.model_spec.name != "alexnet_cifar10":
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: Latest({request.model_spec.name})")
        signature = self.signatures[request.model_spec.signature_name or "serving_default"]
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        response = predict_pb2.PredictResponse()
        for name, value in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


@pytest.fixture(scope="module")
def grpc_server(export_dir):
    from concurrent import futures

    import grpc

    signatures = {name: load_saved_model(export_dir, name)
                  for name in ("serving_default", "classify_image_bytes")}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        FakeTFServingGrpc(signatures), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_grpc_request_names_the_signature_and_typed_inputs(test_images):
    by_pixels = grpc_client.grpc_request("alexnet_cifar10", test_images, version=2)
    assert by_pixels.model_spec.signature_name == "serving_default"
    assert by_pixels.model_spec.version.value == 2
    assert tf.make_ndarray(by_pixels.inputs["images"]).dtype == np.uint8
    assert [d.size for d in by_pixels.inputs["images"].tensor_shape.dim] == [3, 32, 32, 3]
    by_bytes = grpc_client.grpc_request("alexnet_cifar10", [png_bytes(test_images[0])])
    assert by_bytes.model_spec.signature_name == "classify_image_bytes"
    assert by_bytes.inputs["image_bytes"].dtype == tf.string.as_datatype_enum


def test_predict_grpc_matches_the_keras_model_and_reports_failures(grpc_server, keras_model,
                                                                   test_images):
    expected = keras_probabilities(keras_model, test_images)
    by_pixels = grpc_client.predict_grpc(grpc_server, "alexnet_cifar10", test_images)
    by_bytes = grpc_client.predict_grpc(grpc_server, "alexnet_cifar10",
                                    [png_bytes(i) for i in test_images])
    for predictions in (by_pixels, by_bytes):
        np.testing.assert_allclose([p.probabilities for p in predictions], expected, atol=1e-5)
        assert [p.class_id for p in predictions] == expected.argmax(1).tolist()
    with pytest.raises(client.ServingError, match="NOT_FOUND: Servable not found"):
        grpc_client.predict_grpc(grpc_server, "resnet", test_images)
    with pytest.raises(client.ServingError, match="UNAVAILABLE|DEADLINE_EXCEEDED"):
        grpc_client.predict_grpc("127.0.0.1:9", "alexnet_cifar10", test_images, timeout=2)


class RecordingGrpc(prediction_service_pb2_grpc.PredictionServiceServicer):
    """A gRPC PredictionService (a TEST DOUBLE) that keeps each request and answers class 3 with
    certainty for every image it was sent."""

    def __init__(self):
        self.requests = []

    def Predict(self, request, context):
        self.requests.append(request)
        count = tf.make_ndarray(request.inputs["images"]).shape[0]
        response = predict_pb2.PredictResponse()
        outputs = {"probabilities": np.eye(10, dtype=np.float32)[[3] * count],
                   "class_id": np.full(count, 3), "class_name": np.array([b"cat"] * count)}
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


def test_predict_grpc_sends_the_paper_networks_224_pixel_images():
    from concurrent import futures

    import grpc

    recording = RecordingGrpc()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(recording, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    images = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    try:
        predictions = grpc_client.predict_grpc(f"127.0.0.1:{port}", "alexnet_imagenette",
                                               images, image_shape=(224, 224, 3))
        with pytest.raises(client.ImageError, match=re.escape("shape [N, 224, 224, 3]")):
            grpc_client.predict_grpc(f"127.0.0.1:{port}", "alexnet_imagenette", images[:, :32],
                                     image_shape=(224, 224, 3))
    finally:
        server.stop(None)
    assert [p.class_name for p in predictions] == ["cat", "cat"]
    [request] = recording.requests
    assert request.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["images"]), images)


class HostileGrpc(prediction_service_pb2_grpc.PredictionServiceServicer):
    """A gRPC PredictionService answering `outputs` whatever it is asked (a TEST DOUBLE)."""

    def __init__(self, outputs):
        self.outputs = outputs

    def Predict(self, request, context):
        response = predict_pb2.PredictResponse()
        for name, value in self.outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


@pytest.mark.parametrize("outputs, message", [
    ({"probabilities": np.full((5000, 10), 0.1, np.float32),
      "class_id": np.zeros(5000, np.int64), "class_name": np.array([b"airplane"] * 5000)},
     "RESOURCE_EXHAUSTED"),
    ({"probabilities": np.eye(10, dtype=np.float32)[[3]], "class_id": np.array([4]),
      "class_name": np.array([b"deer"])}, "prediction 0 has class_id 4, not that of its largest"),
    ({"probabilities": np.eye(10, dtype=np.float32)[[3, 3]], "class_id": np.array([3, 3]),
      "class_name": np.array([b"cat", b"cat"])}, "TF Serving answered 2 predictions for 1 image"),
    ({"scores": np.zeros((1, 10), np.float32)}, "unexpected TF Serving answer: outputs ['scores']"),
])
def test_a_grpc_answer_too_large_or_wrong_is_one_serving_error(outputs, message, test_images):
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(HostileGrpc(outputs),
                                                                        server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(client.ServingError, match=re.escape(message)):
            grpc_client.predict_grpc(f"127.0.0.1:{port}", "alexnet_cifar10", test_images[:1],
                                 timeout=30)
    finally:
        server.stop(None)


@pytest.mark.slow
def test_predict_answers_each_file_before_it_reads_the_next(export_dir, image_files, tmp_path,
                                                            run_cli_here):
    missing = str(tmp_path / "missing.png")
    result = run_cli_here("predict", image_files[0], missing, image_files[1], "--model",
                          export_dir)
    expected = load_saved_model(export_dir)(images=tf.constant(
        np.asarray(Image.open(image_files[0]))[None]))["class_name"].numpy()[0].decode()
    assert result.returncode == 2
    assert [line.split(": ")[0] for line in result.stdout.splitlines()] == [image_files[0]]
    assert result.stdout.split(": ")[1].split()[0] == expected
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"keras-alexnet: error: cannot read {missing}")


@pytest.mark.parametrize("content, message", [
    ("caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 3)"),
    (bytes(range(256)), "is not UTF-8 text (byte 128)"),
    (None, "is 67,108,864 bytes, over the 1,048,576 allowed"),  # a sparse 64 MiB file
])
def test_a_class_names_file_that_is_not_small_utf8_text_is_one_line(content, message, tmp_path,
                                                                     image_files, run_cli_here):
    path = tmp_path / "names.txt"
    with open(path, "wb") as file:
        if content is None:
            file.truncate(64 * 2 ** 20)
        else:
            file.write(content)
    result = run_cli_here("predict", image_files[0], "--server", "http://127.0.0.1:9",
                          "--class-names", path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0] == f"keras-alexnet: error: --class-names {path} {message}"


# The presets' SavedModel cache: filled only by what was verified, checked before each use.


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home" / "keras_alexnet" / "saved_models"


def tiny_preset(directory, seed):
    model = build_model(width_multiplier=0.25, dense_units=16, seed=seed)
    save_to_preset(model, str(directory))
    return str(directory), model


def copy_of_shipped(name, directory, config=None, metadata=None):
    """A copy of a shipped preset with its JSON files changed, its weights (and their sha256) as
    they are."""
    shutil.copytree(os.path.join(SHIPPED_DIR, name), directory)
    for file_name, change in (("config.json", config), ("metadata.json", metadata)):
        if change:
            path = os.path.join(directory, file_name)
            values = json.load(open(path))
            change(values)
            json.dump(values, open(path, "w"))
    return str(directory)


def predicted(run_cli_here, image, *model):
    result = run_cli_here("predict", image, "--json", "--top-k", "10", *model)
    assert result.returncode == 0, result.stderr
    return {top["class_name"]: top["probability"] for top in json.loads(result.stdout)[0]["top"]}


@pytest.mark.slow
def test_a_changed_copy_of_a_shipped_preset_changes_nothing_the_default_answers(
        keras_home, test_images, tmp_path, run_cli_here):
    image = tmp_path / "image.png"
    image.write_bytes(png_bytes(test_images[0]))
    expected = keras_probabilities(keras_alexnet.AlexNet.from_preset(DEFAULT_PRESET),
                                   test_images[:1])[0]
    names = shipped_presets()[DEFAULT_PRESET]["class_names"]
    standardised_by_nothing = copy_of_shipped(
        DEFAULT_PRESET, tmp_path / "mean", config=lambda config: config["config"].update(
            mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0]))
    renamed = copy_of_shipped(DEFAULT_PRESET, tmp_path / "names", metadata=lambda metadata:
                              metadata.update(class_names=metadata["class_names"][::-1]))
    for crafted in (standardised_by_nothing, renamed):
        answer = predicted(run_cli_here, image, "--model", crafted)
        assert next(iter(answer)) != names[expected.argmax()]  # the copy answers its own
        answer = predicted(run_cli_here, image)
        assert list(answer) == [names[index] for index in np.argsort(-expected)]
        np.testing.assert_allclose([answer[name] for name in names], expected, atol=1e-5)


@pytest.mark.slow
def test_a_class_name_with_a_line_break_is_refused_and_the_shipped_preset_still_predicts(
        keras_home, test_images, tmp_path, run_cli_here):
    image = tmp_path / "image.png"
    image.write_bytes(png_bytes(test_images[0]))
    crafted = copy_of_shipped("alexnet_fast_cifar10", tmp_path / "newline", metadata=lambda m:
                              m["class_names"].__setitem__(0, "air\nplane"))
    result = run_cli_here("predict", image, "--model", crafted)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "class_names in its metadata.json are not a list of names of one line" in result.stderr
    expected = keras_probabilities(keras_alexnet.AlexNet.from_preset("alexnet_fast_cifar10"),
                                   test_images[:1])[0]
    answer = predicted(run_cli_here, image, "--model", "alexnet_fast_cifar10")
    names = shipped_presets()["alexnet_fast_cifar10"]["class_names"]
    np.testing.assert_allclose([answer[name] for name in names], expected, atol=1e-5)


def test_a_weights_sha256_made_of_path_segments_is_refused_and_nothing_is_written(
        keras_home, tmp_path):
    directory, _ = tiny_preset(tmp_path / "preset", seed=0)
    path = os.path.join(directory, "metadata.json")
    metadata = json.load(open(path))
    metadata["weights_sha256"] = "../" * 21 + "x"
    json.dump(metadata, open(path, "w"))
    with pytest.raises(keras_alexnet.ModelError, match="is not 64 hexadecimal digits"):
        preset_saved_model(directory)
    assert sorted(os.listdir(tmp_path)) == ["preset"]  # no cache, nothing beside it


def _truncate_graph(version, other):
    path = os.path.join(version, "saved_model.pb")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])


def _variables_of_the_other(version, other):
    shutil.rmtree(os.path.join(version, "variables"))
    shutil.copytree(os.path.join(other, "variables"), os.path.join(version, "variables"))


def _no_index(version, other):
    os.remove(os.path.join(version, "variables", "variables.index"))


def _junk_version(version, other):
    os.makedirs(os.path.join(os.path.dirname(version), "2"))


def _version_a_file(version, other):
    shutil.rmtree(version)
    open(version, "w").write("junk")


def _no_stamp(version, other):
    os.remove(os.path.join(os.path.dirname(os.path.dirname(version)), "stamp.json"))


@pytest.mark.parametrize("damage", [_truncate_graph, _variables_of_the_other, _no_index,
                                    _junk_version, _version_a_file, _no_stamp])
def test_a_damaged_cached_export_is_exported_again_with_one_warning(
        keras_home, tmp_path, test_images, damage, caplog):
    directory, model = tiny_preset(tmp_path / "preset", seed=0)
    other_directory, _ = tiny_preset(tmp_path / "other", seed=1)
    version = os.path.join(preset_saved_model(directory), "1")
    damage(version, os.path.join(preset_saved_model(other_directory), "1"))
    with caplog.at_level("WARNING", logger="keras_alexnet"):
        model_dir = preset_saved_model(directory)
    (warning,) = [record.getMessage() for record in caplog.records]
    assert warning.startswith(f"the cached SavedModel of preset {directory!r} is damaged (")
    assert warning.endswith("): exporting it again") and "\n" not in warning
    assert sorted(os.listdir(model_dir)) == ["1"]
    serve = load_saved_model(model_dir)
    np.testing.assert_allclose(serve(images=tf.constant(test_images))["probabilities"].numpy(),
                               keras_probabilities(model, test_images), atol=1e-5)
    caplog.clear()
    assert preset_saved_model(directory) == model_dir and caplog.records == []


def test_staging_left_by_killed_exports_is_removed_and_live_staging_kept(keras_home, tmp_path):
    directory, _ = tiny_preset(tmp_path / "preset", seed=0)
    preset_saved_model(directory)
    gone = subprocess.Popen(["true"])  # a process id that no longer runs
    gone.wait()
    host = socket.gethostname()
    staging = {name: keras_home / name for name in (
        f".tmp-{host}-{gone.pid}-0", ".tmp-otherhost-1-0", ".tmp-otherhost-2-0",
        f".tmp-{host}-{os.getpid()}-0")}
    for path in staging.values():
        (path / "model").mkdir(parents=True)
    two_hours_ago = time.time() - 7200
    for name in (".tmp-otherhost-1-0", f".tmp-{host}-{os.getpid()}-0"):
        os.utime(staging[name], (two_hours_ago, two_hours_ago))
    preset_saved_model(directory)  # from the cache
    assert sorted(name for name in os.listdir(keras_home) if name.startswith(".")) == sorted(
        [".tmp-otherhost-2-0", f".tmp-{host}-{os.getpid()}-0"])


def test_an_empty_keras_home_is_keras_default_not_the_current_directory(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("KERAS_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert keras_cache_dir("saved_models") == str(
        tmp_path / "home" / ".keras" / "keras_alexnet" / "saved_models")
