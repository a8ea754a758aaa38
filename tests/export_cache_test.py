"""The SavedModel cache: an export another process published while this one exported is kept,
not replaced."""

import hashlib
import os

from keras_alexnet.serving import export_cache


def fake_export(marker: str):
    """An export that writes `model/1/marker.txt` holding `marker`."""
    def export(base: str) -> None:
        os.makedirs(os.path.join(base, "model", "1"))
        with open(os.path.join(base, "model", "1", "marker.txt"), "w") as file:
            file.write(marker)
    return export


def test_an_export_published_meanwhile_by_another_process_is_kept(tmp_path, monkeypatch):
    """While this process exports, another publishes the same digest's export (the first to
    finish, which a reader may already be loading): it stays where it is, this one is dropped."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    digest = hashlib.sha256(b"weights").hexdigest()
    published = {}

    def export_while_another_publishes(base: str) -> None:
        published["model"] = export_cache.cached_saved_model(digest, fake_export("theirs"),
                                                             "preset 'x'")
        published["inode"] = os.stat(published["model"]).st_ino
        fake_export("ours")(base)

    model = export_cache.cached_saved_model(digest, export_while_another_publishes, "preset 'x'")
    assert model == published["model"]
    assert os.stat(model).st_ino == published["inode"]
    with open(os.path.join(model, "1", "marker.txt")) as file:
        assert file.read() == "theirs"
    root = os.path.dirname(os.path.dirname(model))
    assert os.listdir(root) == [digest]  # no staging left
