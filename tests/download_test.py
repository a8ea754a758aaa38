"""Presets by URL, against a loopback HTTP server this test starts: downloaded once and checked
against the hash; a wrong hash, a failed download or a hostile archive leaves nothing behind."""

import hashlib
import http.server
import io
import os
import sys
import tarfile
import threading
import types
import zipfile

import numpy as np
import pytest
from conftest import perturbed

from keras_alexnet import AlexNet, ModelError
from keras_alexnet.models.preset_files import save_to_preset
from keras_alexnet.utils.download import keras_cache_dir


class Server:
    """Serves `files` (path → bytes) on 127.0.0.1 and counts the requests for each path."""

    def __init__(self, files):
        self.files, self.requests = files, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                self.send_response(404 if body is None else 200)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return keras_cache_dir("presets")


@pytest.fixture(scope="module")
def model():
    return perturbed(AlexNet(width_multiplier=0.25, dense_units=32, seed=0))


def tar_gz(directory, top="alexnet_tiny"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(directory, arcname=top)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archives(model, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("preset") / "alexnet_tiny")
    save_to_preset(model, directory)
    flat = io.BytesIO()
    with zipfile.ZipFile(flat, "w") as archive:
        for name in os.listdir(directory):
            archive.write(os.path.join(directory, name), name)
    return {"/tiny.tar.gz": tar_gz(directory), "/tiny.zip": flat.getvalue()}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("path", ["/tiny.tar.gz", "/tiny.zip"])
def test_a_preset_url_is_downloaded_once_checked_and_loaded(model, archives, cache, path):
    server = Server(archives)
    url, digest = server.url + path, sha256(archives[path])
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    for _ in range(2):
        loaded = AlexNet.from_preset(url, sha256=digest)
        np.testing.assert_array_equal(loaded.predict(images, verbose=0),
                                      model.predict(images, verbose=0))
    assert server.requests == [path]  # the second load came from the cache
    assert os.listdir(cache) == [digest]


def test_a_wrong_hash_keeps_nothing(archives, cache):
    server = Server(archives)
    with pytest.raises(ModelError, match=r"the download's sha256 is [0-9a-f]{64}, not 0{64}; "
                                         r"nothing was kept"):
        AlexNet.from_preset(server.url + "/tiny.tar.gz", sha256="0" * 64)
    assert os.listdir(cache) == []


@pytest.mark.parametrize("sha", [None, "abc", "g" * 64])
def test_a_url_needs_its_hash(archives, cache, sha):
    with pytest.raises(ModelError, match="give its archive's sha256 .64 hex digits."):
        AlexNet.from_preset("https://127.0.0.1:9/preset.tar.gz", sha256=sha)


def test_a_failed_download_keeps_nothing(archives, cache):
    server = Server(archives)
    with pytest.raises(ModelError, match="could not be downloaded: .*404"):
        AlexNet.from_preset(server.url + "/missing.tar.gz", sha256="0" * 64)
    assert os.listdir(cache) == []


def test_an_archive_reaching_outside_its_directory_is_refused(tmp_path, cache):
    payload = tmp_path / "config.json"
    payload.write_text("{}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(str(payload), arcname="../../escaped.json")
    server = Server({"/evil.tar.gz": buffer.getvalue()})
    with pytest.raises(ModelError, match="holds a file outside its directory: '../../escaped"):
        AlexNet.from_preset(server.url + "/evil.tar.gz", sha256=sha256(buffer.getvalue()))
    assert os.listdir(cache) == [] and not os.path.exists(tmp_path / "escaped.json")


def test_bytes_that_are_no_archive_are_refused(cache):
    body = b"<html>not a preset</html>"
    server = Server({"/page": body})
    with pytest.raises(ModelError, match="is not a .tar.gz or .zip archive of a preset"):
        AlexNet.from_preset(server.url + "/page", sha256=sha256(body))
    assert os.listdir(cache) == []


@pytest.mark.parametrize("handle, package", [("hf://keras/alexnet", "huggingface_hub"),
                                             ("kaggle://keras/alexnet/keras/cifar10",
                                              "kagglehub")])
def test_a_hub_handle_without_its_library_says_what_to_install(handle, package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(ModelError, match=f"needs {package}: pip install {package}"):
        AlexNet.from_preset(handle)


@pytest.mark.parametrize("handle, package, function, argument", [
    ("hf://keras/alexnet_tiny", "huggingface_hub", "snapshot_download", "repo_id"),
    ("kaggle://keras/alexnet/keras/tiny", "kagglehub", "model_download", "handle")])
def test_a_hub_handle_is_fetched_by_its_library_into_a_directory(handle, package, function,
                                                                 argument, model, tmp_path,
                                                                 monkeypatch):
    """The hubs' own libraries (not installed here, and no network) stand in as modules whose
    download function returns a local preset directory, as theirs return their cache's."""
    directory = str(tmp_path / "hub_cache" / "alexnet_tiny")
    save_to_preset(model, directory)
    calls = []

    def download(**kwargs):
        calls.append(kwargs)
        return directory

    monkeypatch.setitem(sys.modules, package, types.SimpleNamespace(**{function: download}))
    loaded = AlexNet.from_preset(handle)
    assert calls == [{argument: handle.split("://", 1)[1]}]
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_array_equal(loaded.predict(images, verbose=0),
                                  model.predict(images, verbose=0))
