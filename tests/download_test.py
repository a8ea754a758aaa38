"""Presets by URL, against a loopback HTTP server this test starts: downloaded once and checked
against the hash; a wrong hash, a failed download, a hostile server or archive, or a signal
leaves nothing behind."""

import fcntl
import hashlib
import http.server
import io
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import threading
import time
import types
import zipfile

import numpy as np
import pytest
from conftest import perturbed

from keras_alexnet import AlexNet, ModelError
from keras_alexnet.models.preset_files import save_to_preset
from keras_alexnet.utils import download
from keras_alexnet.utils.download import keras_cache_dir

WAIT_SECONDS = 60  # the longest any test waits for a process or a server


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


class RawServer:
    """A loopback server that reads each request and then calls `answer(connection, server)`, for
    answers no HTTP server would send; `stop` ends any answer that waits on it."""

    def __init__(self, answer):
        self.stop, self.answered = threading.Event(), threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/preset.tar.gz"

        def serve():
            while True:
                try:
                    connection, _ = self.listener.accept()
                except OSError:  # closed
                    return
                with connection:
                    connection.settimeout(WAIT_SECONDS)
                    try:
                        connection.recv(1 << 16)  # the request, or a TLS client's hello
                        answer(connection, self)
                    except OSError:  # the client hung up
                        pass

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.stop.set()
        self.listener.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(answer):
        servers.append(RawServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def drip(connection, server):
    """A valid header, then one byte of the body every 0.2 s, 100 in all (20 s), unless the
    client hangs up first (`server.answered` is set then)."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        if server.stop.wait(0.2):
            return
        try:
            connection.sendall(b"x")
        except OSError:
            server.answered.set()
            return


def test_a_server_dripping_bytes_is_cut_off_at_the_total_deadline(cache, raw_server,
                                                                  monkeypatch):
    """Each byte comes well within the deadline; the whole body (20 s) never would: the client
    hangs up while the server still sends."""
    monkeypatch.setattr(download, "DOWNLOAD_TIMEOUT_SECONDS", 1.0)
    server = raw_server(drip)
    with pytest.raises(ModelError, match=r"was not downloaded within 1 s; nothing was kept$"):
        AlexNet.from_preset(server.url, sha256="0" * 64)
    assert os.listdir(cache) == []
    assert server.answered.wait(WAIT_SECONDS), "the server sent its whole body"


def answer_with(data):
    def answer(connection, server):
        connection.sendall(data)
    return answer


def reset(connection, server):
    """Closes the connection with a TCP reset instead of an answer."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


OK = b"HTTP/1.1 200 OK\r\n"
HOSTILE_ANSWERS = {
    "bad status line": answer_with(b"HELLO WORLD\r\n\r\n"),
    "bad chunk": answer_with(OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
    "101 headers": answer_with(OK + b"".join(b"X-%d: y\r\n" % n for n in range(101))
                               + b"\r\n"),
    "100 kB header line": answer_with(OK + b"X-Long: " + b"y" * 100_000 + b"\r\n\r\n"),
    "body cut short": answer_with(OK + b"Content-Length: 1000\r\n\r\nabc"),
    "connection reset": reset,
    "closed without an answer": answer_with(b""),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ANSWERS))
def test_every_protocol_error_is_one_line_and_leaves_nothing(name, cache, raw_server):
    server = raw_server(HOSTILE_ANSWERS[name])
    with pytest.raises(ModelError, match="could not be downloaded: ") as raised:
        AlexNet.from_preset(server.url, sha256="0" * 64)
    assert "\n" not in str(raised.value)
    assert os.listdir(cache) == []


def test_tls_spoken_to_a_plain_server_is_one_line(cache, raw_server):
    server = raw_server(answer_with(OK + b"Content-Length: 0\r\n\r\n"))
    url = server.url.replace("http://", "https://")
    with pytest.raises(ModelError, match="could not be downloaded: .*SSL") as raised:
        AlexNet.from_preset(url, sha256="0" * 64)
    assert "\n" not in str(raised.value)


SIGNALLED_DOWNLOAD = """
import sys
from keras_alexnet.errors import KerasAlexNetError
from keras_alexnet.utils.download import preset_source
try:
    preset_source(sys.argv[1], sha256="0" * 64)
except KerasAlexNetError as error:  # as the command line reports it
    print(f"keras-alexnet: {error}", file=sys.stderr)
    sys.exit(error.exit_status)
"""


def endless_body(connection, server):
    """A 1 GB body of which 64 kB come at once, then nothing until the test ends."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"
                       + b"x" * 65536)
    server.answered.set()
    server.stop.wait(WAIT_SECONDS)


@pytest.mark.parametrize("number, status", [(signal.SIGTERM, 75), (signal.SIGINT, 130)])
def test_a_signal_during_a_download_exits_in_one_line_and_leaves_nothing(number, status, cache,
                                                                        raw_server):
    server = raw_server(endless_body)
    process = subprocess.Popen([sys.executable, "-c", SIGNALLED_DOWNLOAD, server.url],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert server.answered.wait(WAIT_SECONDS), "the download never started"
        staging = [name for name in os.listdir(cache) if name.startswith(".download-")]
        assert staging, "the download writes into a staging directory"
        process.send_signal(number)
        _, stderr = process.communicate(timeout=WAIT_SECONDS)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == status
    assert stderr.splitlines() == [f"keras-alexnet: stopped by {signal.Signals(number).name} "
                                   f"while downloading {server.url!r}; nothing was kept: the "
                                   f"same call downloads it again"]
    assert os.listdir(cache) == []


def test_staging_left_by_a_killed_download_is_removed_once_old_and_unheld(archives, cache):
    """Three staging directories: one older than the deadline whose process is gone (removed),
    one as old but held by a live download (kept), one younger (kept: it may be starting)."""
    os.makedirs(cache)
    old, held, young = (os.path.join(cache, f".download-{name}") for name in ("a", "b", "c"))
    for path in (old, held, young):
        os.makedirs(os.path.join(path, "preset"))
        with open(os.path.join(path, "archive"), "wb") as file:
            file.write(b"x" * 1000)
    long_ago = time.time() - 2 * download.DOWNLOAD_TIMEOUT_SECONDS
    for path in (old, held):
        os.utime(path, (long_ago, long_ago))
    holder = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        server = Server(archives)
        AlexNet.from_preset(server.url + "/tiny.zip", sha256=sha256(archives["/tiny.zip"]))
    finally:
        os.close(holder)
    assert sorted(os.listdir(cache)) == sorted([".download-b", ".download-c",
                                                sha256(archives["/tiny.zip"])])


def preset_tar_gz(directory, extra=(), top="alexnet_tiny"):
    """A `.tar.gz` of the preset `directory` under `top/`, with the `TarInfo`s (and their
    data) in `extra` added."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        archive.add(directory, arcname=top)
        for member, data in extra:
            archive.addfile(member, data)
    return buffer.getvalue()


def member(name, kind=tarfile.REGTYPE, size=0, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


class Zeros(io.RawIOBase):
    """`size` zero bytes, made as they are read."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@pytest.fixture(scope="module")
def preset_dir(model, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("preset_dir") / "alexnet_tiny")
    save_to_preset(model, directory)
    return directory


def zip_with_symlink(directory):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in os.listdir(directory):
            archive.write(os.path.join(directory, name), name)
        link = zipfile.ZipInfo("link.json")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


HOSTILE_ARCHIVES = {
    # 100 MiB of zeros in a ~200 kB archive: far more than a preset's weights ever compress.
    "unpacks to 500 times its size": (
        lambda d: preset_tar_gz(d, [(member("alexnet_tiny/zeros.bin", size=100 * 2 ** 20),
                                     io.BufferedReader(Zeros(100 * 2 ** 20)))]),
        r"unpacks to 10\d,\d{3},\d{3} bytes or more, over the 67,108,864 allowed for its size"),
    "2,000 directories deep": (
        lambda d: preset_tar_gz(d, [(member("alexnet_tiny/" + "d/" * 2000 + "x"), None)]),
        "holds a path deeper than 16 directories"),
    "1,001 members": (
        lambda d: preset_tar_gz(d, [(member(f"alexnet_tiny/{n}.txt"), None)
                                    for n in range(1001)]),
        "holds more than 1,000 files"),
    "a symbolic link": (
        lambda d: preset_tar_gz(d, [(member("alexnet_tiny/link.json", tarfile.SYMTYPE,
                                            link="config.json"), None)]),
        "holds a symbolic link: 'alexnet_tiny/link.json'"),
    "a hard link": (
        lambda d: preset_tar_gz(d, [(member("alexnet_tiny/link.json", tarfile.LNKTYPE,
                                            link="alexnet_tiny/config.json"), None)]),
        "holds a hard link: 'alexnet_tiny/link.json'"),
    "a device": (
        lambda d: preset_tar_gz(d, [(member("alexnet_tiny/zero", tarfile.CHRTYPE), None)]),
        "holds a device: 'alexnet_tiny/zero'"),
    "a FIFO": (
        lambda d: preset_tar_gz(d, [(member("alexnet_tiny/pipe", tarfile.FIFOTYPE), None)]),
        "holds a FIFO: 'alexnet_tiny/pipe'"),
    "a zip's symbolic link": (zip_with_symlink, "holds a symbolic link: 'link.json'"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ARCHIVES))
def test_an_archive_is_bounded_before_it_is_unpacked(name, preset_dir, cache):
    make, message = HOSTILE_ARCHIVES[name]
    body = make(preset_dir)
    server = Server({"/hostile": body})
    with pytest.raises(ModelError, match=message) as raised:
        AlexNet.from_preset(server.url + "/hostile", sha256=sha256(body))
    assert "\n" not in str(raised.value)
    assert os.listdir(cache) == []


@pytest.mark.parametrize("where", ["the cache", "the preset's directory"])
def test_a_file_where_a_cache_directory_goes_is_one_line_before_downloading(where, archives,
                                                                          cache):
    digest = sha256(archives["/tiny.zip"])
    path = cache if where == "the cache" else os.path.join(cache, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write("a file")
    server = Server(archives)
    with pytest.raises(ModelError, match=f"{path} is a file, not a directory"):
        AlexNet.from_preset(server.url + "/tiny.zip", sha256=digest)
    assert server.requests == []
