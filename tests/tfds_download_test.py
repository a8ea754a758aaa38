"""Downloading a tensorflow-datasets set: refused after one bounded probe of each host, before
any download, when a host cannot be reached; nothing half-written left when a download fails."""

import os
import socket
import sys
import types

import pytest
from conftest import run_cli

from keras_alexnet.data.tfds_download import (
    DOWNLOAD_PROBE_SECONDS,
    check_reachable,
    prepare_tfds,
    removed_on_failure,
)
from keras_alexnet.errors import DataError


def listing(root):
    return sorted(os.path.relpath(os.path.join(directory, name), root)
                  for directory, folders, files in os.walk(root) for name in folders + files)


def test_a_failed_download_leaves_the_data_directory_as_it_was(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "1.0.0").mkdir()  # a set prepared before
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "kept.zip").write_bytes(b"an earlier download")
    (tmp_path / "downloads" / "mnist").mkdir()  # an earlier try's
    before = listing(tmp_path)
    with pytest.raises(ConnectionError):
        with removed_on_failure(str(tmp_path)):
            # what tfds leaves when its download fails
            (tmp_path / "downloads" / "mnist" / "train.gz.tmp.51cd").mkdir()
            (tmp_path / "downloads" / "mnist" / "train.gz.tmp.51cd" / "part").write_bytes(b"1")
            (tmp_path / "downloads" / "extracted").mkdir()
            os.makedirs(tmp_path / "mnist" / "3.0.1.incomplete.X" / "deep" / "deeper")
            (tmp_path / "mnist" / ".lock").write_text("")
            (tmp_path / "downloads" / "kept.zip").write_bytes(b"rewritten, not new: kept")
            raise ConnectionError("the network went away")
    assert listing(tmp_path) == before
    with removed_on_failure(str(tmp_path)):  # a download that succeeds keeps what it wrote
        (tmp_path / "mnist" / "3.0.1").mkdir()
    assert listing(tmp_path) == sorted(before + ["mnist/3.0.1"])


def test_a_data_directory_the_failed_download_made_is_removed(tmp_path):
    root = tmp_path / "tensorflow_datasets"
    with pytest.raises(OSError):
        with removed_on_failure(str(root)):
            os.makedirs(root / "downloads" / "mnist")
            raise OSError("disk full")
    assert os.listdir(tmp_path) == []


def test_an_unreachable_host_is_refused_after_one_probe_before_any_download(tmp_path,
                                                                           monkeypatch):
    """tfds stands in as a module whose builder records a download; its two files lie on one
    host, at a port nothing listens on (bound, never listening)."""
    downloads, probes = [], []
    connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: (
        probes.append((address, timeout)), connect(address, timeout=timeout))[1])
    data_dir = tmp_path / "tensorflow_datasets"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        builder = types.SimpleNamespace(
            is_prepared=lambda: False, data_dir_root=str(data_dir),
            url_infos={f"https://127.0.0.1:{port}/{name}": None for name in ("a.gz", "b.gz")},
            download_and_prepare=lambda: downloads.append(data_dir.mkdir()))
        monkeypatch.setitem(sys.modules, "tensorflow_datasets",
                            types.SimpleNamespace(builder=lambda name, data_dir: builder))
        with pytest.raises(DataError, match=rf"^cannot download 'mnist' .*127\.0\.0\.1:{port} "
                                            r"cannot be reached \(Connection refused\)"):
            prepare_tfds("mnist", str(data_dir))
    assert probes == [(("127.0.0.1", port), DOWNLOAD_PROBE_SECONDS)]
    assert downloads == [] and os.listdir(tmp_path) == []


def test_a_reachable_host_is_not_refused():
    with socket.create_server(("127.0.0.1", 0)) as server:
        check_reachable("mnist", [f"http://127.0.0.1:{server.getsockname()[1]}/a.gz"])


def can_reach(host, port=443):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.large  # the command in a fresh process
@pytest.mark.skipif(can_reach("storage.googleapis.com"),
                    reason="this machine can reach MNIST's download host: it would download it")
def test_a_set_that_cannot_be_downloaded_is_one_line_and_leaves_nothing(tmp_path):
    data_dir = tmp_path / "tensorflow_datasets"
    result = run_cli("train", "--recipe", "paper", "--dataset", "mnist", "--data-dir", data_dir,
                     "--output-dir", tmp_path / "run", "--epochs", "1")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("keras-alexnet: error: cannot download 'mnist' through "
                               "tensorflow-datasets: storage.googleapis.com:443 cannot be reached")
    assert os.listdir(tmp_path) == []
