"""The browser demo (`keras-alexnet demo`, `keras_alexnet.demo`): its refusals, its bounds, its
model side against independent computations, the page over a TF Serving stand-in, and (large)
the page in headless Chromium against `keras-alexnet predict`, under 20 requests at once."""

import json
import os
import sys

import numpy as np
import pytest
from conftest import SHARED_CIFAR, TINY_MODEL, softmax

from keras_alexnet.cli import build_parser
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.errors import ConfigError, ImageError, KerasAlexNetError
from keras_alexnet.models.catalogue import SHIPPED_DIR
from keras_alexnet.web import INSTALL

PRESET = "alexnet_fast_cifar10"  # the smallest shipped preset


def png(image):
    from PIL import Image

    path_like = __import__("io").BytesIO()
    Image.fromarray(image).save(path_like, format="PNG")
    return path_like.getvalue()


def test_without_gradio_the_api_and_the_command_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` fails as if not installed
    import keras_alexnet

    with pytest.raises(ConfigError, match=r"pip install 'keras_alexnet\[demo\]'"):
        keras_alexnet.demo()
    args = build_parser().parse_args(["demo"])
    with pytest.raises(KerasAlexNetError) as refused:
        args.check(args)  # before TensorFlow is imported
    assert str(refused.value) == INSTALL and refused.value.exit_status == 2


@pytest.mark.parametrize("flags, message", [
    (["--model", PRESET, "--server", "http://127.0.0.1:8501"],
     "give --model or --server, not both"),
    (["--port", "70000"], "--port must be in 1..65535, got 70000"),
    (["--timeout", "0"], "--timeout"),
    (["--server", "not-a-url"], "--server must be an http:// or https:// URL"),
    (["--server", "file:///etc/passwd"], "--server must be an http:// or https:// URL"),
])
def test_bad_flags_are_one_line_and_exit_2(run_cli_here, flags, message):
    result = run_cli_here("demo", *flags)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-alexnet: error: ") and message in lines[0]


def test_only_uploads_are_read_and_within_predicts_bounds(tmp_path):
    from keras_alexnet.web.images import read_upload

    uploads, elsewhere = tmp_path / "uploads", tmp_path / "elsewhere"
    uploads.mkdir(), elsewhere.mkdir()
    good = png(np.full((5, 7, 3), 9, np.uint8))
    (elsewhere / "secret.png").write_bytes(good)
    (uploads / "link.png").symlink_to(elsewhere / "secret.png")
    (uploads / "notes.txt").write_text("not an image")
    with open(uploads / "huge.png", "wb") as file:  # sparse: 65 MiB that take no disk
        file.write(good), file.truncate(65 * 2 ** 20)
    (uploads / "ok.png").write_bytes(good)
    for path in (elsewhere / "secret.png", uploads / "link.png",
                 uploads / ".." / "elsewhere" / "secret.png"):
        with pytest.raises(ImageError, match="was not uploaded: only uploaded files are read"):
            read_upload(str(path), str(uploads))
    with pytest.raises(KerasAlexNetError, match=r"^notes.txt is not a PNG, JPEG or BMP image$"):
        read_upload(str(uploads / "notes.txt"), str(uploads))
    with pytest.raises(KerasAlexNetError, match=r"^huge.png is larger than 64 MiB"):
        read_upload(str(uploads / "huge.png"), str(uploads))
    assert read_upload(str(uploads / "ok.png"), str(uploads)) == ("ok.png", good)


def test_the_preset_card_shows_its_metadata():
    from keras_alexnet.web.classifier import preset_card
    from keras_alexnet.web.page import card_text

    with open(os.path.join(SHIPPED_DIR, PRESET, "metadata.json")) as file:
        metadata = json.load(file)
    text = card_text(PRESET, preset_card(PRESET, metadata))
    rows = dict(line.strip("|").split(" | ", 1) for line in text.splitlines()[4:])
    rows = {key.strip(): value.strip() for key, value in rows.items()}
    assert rows["recipe"] == metadata["recipe"] == "fast"
    assert rows["test accuracy"] == f"{100 * metadata['test_accuracy']:.2f}%"
    assert rows["trained on"] == metadata["trained"]["date"]
    assert rows["machine"] == metadata["trained"]["machine"]
    assert rows["parameters"] == str(metadata["parameter_count"])


def test_grad_cam_overlay_blends_the_jet_colours_over_the_pixels():
    from keras_alexnet.web.images import overlay

    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    heat = np.zeros((2, 3), np.float32)
    heat[1, 2] = 1.0
    shown = overlay(pixels, heat)
    assert shown.shape == (12, 18, 3)
    # jet(0) is dark blue (0, 0, 0.5), jet(1) dark red (0.5, 0, 0); the map lies at 45 %.
    cold = np.round(0.55 * pixels[0, 0] + 0.45 * np.array([0, 0, 127.5]))
    hot = np.round(0.55 * pixels[1, 2] + 0.45 * np.array([127.5, 0, 0]))
    np.testing.assert_allclose(shown[:6, :6], np.broadcast_to(cold, (6, 6, 3)), atol=1)
    np.testing.assert_allclose(shown[6:, 12:], np.broadcast_to(hot, (6, 6, 3)), atol=1)


@pytest.fixture(scope="module")
def test_image():
    """CIFAR-10's first test image (the real one when ../shared has it, else seeded pixels)."""
    if os.path.isdir(SHARED_CIFAR):
        from keras_alexnet.data.cifar10 import load_cifar10

        return load_cifar10(SHARED_CIFAR).x_test[0]
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


@pytest.mark.slow
def test_a_preset_classifies_as_its_keras_model_and_explains_each_class(test_image):
    import keras

    from keras_alexnet import AlexNet
    from keras_alexnet.web.classifier import LocalClassifier

    classifier = LocalClassifier(PRESET)
    prediction = classifier.classify("cat.png", png(test_image))
    logits = AlexNet.from_preset(PRESET)(test_image[None].astype("float32"), training=False)
    expected = softmax(keras.ops.convert_to_numpy(logits))[0]
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    assert prediction.class_name == CLASS_NAMES[int(expected.argmax())]
    pixels, top = classifier.grad_cam(png(test_image), prediction.class_id)
    _, other = classifier.grad_cam(png(test_image), (prediction.class_id + 1) % 10)
    np.testing.assert_array_equal(pixels, test_image)  # a 32 × 32 PNG is seen as it is
    assert top.shape == (32, 32) and top.max() == pytest.approx(1.0)
    assert not np.allclose(top, other)  # the map is the chosen class's
    from image_bytes_test import png_bomb

    with pytest.raises(ImageError, match=r"^bomb.png declares 20000 × 20000 pixels, more than"):
        classifier.classify("bomb.png", png_bomb(20000, 20000))


@pytest.mark.slow
def test_a_run_directory_classifies_with_its_model_and_shows_its_metrics(tmp_path, test_image):
    import keras

    from keras_alexnet.models.build import build_model
    from keras_alexnet.web.classifier import LocalClassifier
    from keras_alexnet.web.page import card_text

    model = build_model(seed=3, **TINY_MODEL)
    model.save(tmp_path / "best.keras")
    (tmp_path / "metrics.json").write_text(json.dumps({"test_accuracy": 0.4321,
                                                       "epochs_completed": 2}))
    classifier = LocalClassifier(str(tmp_path))
    expected = softmax(keras.ops.convert_to_numpy(model(test_image[None].astype("float32"))))[0]
    prediction = classifier.classify("image.png", png(test_image))
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    card = card_text(classifier.title, classifier.card())
    assert "| test accuracy | 43.21% |" in card and "| epochs | 2 |" in card
    exported = classifier._directory.name
    assert os.path.isdir(exported) and not os.listdir(tmp_path).count("saved_models")
    classifier.close()
    assert not os.path.exists(exported) and sorted(os.listdir(tmp_path)) == ["best.keras",
                                                                            "metrics.json"]


def top5_text(probabilities):
    """`predict --top-k 5`'s words for one image's probabilities (an independent ranking)."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:5]
    return ", ".join(f"{CLASS_NAMES[i]} {probabilities[i]:.3f}" for i in order)


@pytest.fixture(scope="module")
def stand_in_server():
    """TF Serving's REST endpoint as the serving tests' stand-in, serving the preset's export."""
    import threading
    from http.server import ThreadingHTTPServer

    from serving_test import FakeTFServing

    from keras_alexnet.serving.export import load_saved_model
    from keras_alexnet.serving.presets import saved_model_of

    path = saved_model_of(PRESET)
    FakeTFServing.signatures = {name: load_saved_model(path, name)
                                for name in ("serving_default", "classify_image_bytes")}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeTFServing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", FakeTFServing.signatures
    httpd.shutdown()


@pytest.mark.slow
def test_with_a_server_the_page_shows_the_served_models_answers(stand_in_server, test_image,
                                                                tmp_path):
    import tensorflow as tf
    from gradio_client import Client, handle_file

    import keras_alexnet
    from keras_alexnet.web import launch
    from keras_alexnet.web.classifier import GRAD_CAM_UNAVAILABLE

    url, signatures = stand_in_server
    (tmp_path / "cat.png").write_bytes(png(test_image))
    served = signatures["classify_image_bytes"](image_bytes=tf.constant([png(test_image)]))
    app = keras_alexnet.demo(server=url)
    launch(app)
    try:
        answer = Client(app.local_url, verbose=False).predict(
            [handle_file(str(tmp_path / "cat.png"))], api_name="/classify")
    finally:
        app.close()
    assert answer[0] == f"- `cat.png`: {top5_text(served['probabilities'].numpy()[0])}"
    assert answer[2]["label"] == served["class_name"].numpy()[0].decode()
    texts = [c.get("props", {}).get("value") for c in app.config["components"]]
    assert GRAD_CAM_UNAVAILABLE in texts and not any(
        c["type"] == "image" for c in app.config["components"])


@pytest.fixture(scope="module")
def demo_process(e2e_data_dir):
    """`keras-alexnet demo` with the smallest preset, started as a user starts it; its URL and
    process id."""
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "keras_alexnet.cli", "demo", "--model",
                                PRESET, "--data-dir", e2e_data_dir, "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # the URL, once it serves (or "" if it ended)
    assert line.startswith("demo: http://127.0.0.1:"), line
    yield line.split(" ", 1)[1].strip(), process.pid
    process.terminate()
    assert process.wait(timeout=60) == 75  # SIGTERM: one line, exit status 75


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver), driven by Selenium."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("no chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1300"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def upload(browser, url, *paths, expected):
    """Opens the page, uploads `paths` and returns the results' text once it holds `expected`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    field = WebDriverWait(browser, 60).until(
        lambda page: page.find_element(By.CSS_SELECTOR, "#upload input[type=file]"))
    field.send_keys("\n".join(str(path) for path in paths))
    results = browser.find_element(By.ID, "results")
    WebDriverWait(browser, 120).until(lambda page: expected in results.text)
    return results.text.replace("\n: ", ": ")  # a file's name is set as code, a block of its own


def predict_words(run_cli_here, path):
    """What `keras-alexnet predict --top-k 5` says of one file, after its `path: `."""
    result = run_cli_here("predict", "--model", PRESET, "--top-k", "5", path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(": ", 1)[1]


@pytest.mark.slow
@pytest.mark.large
def test_the_page_in_a_browser_shows_predicts_top_class_and_probability(
        demo_process, browser, run_cli_here, test_image, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "test_image_0.png"
    path.write_bytes(png(test_image))
    expected = predict_words(run_cli_here, path)
    text = upload(browser, demo_process[0], path, expected="test_image_0.png")
    assert text.strip() == f"test_image_0.png: {expected}"
    top_class = expected.split(" ")[0]
    assert browser.find_element(By.ID, "top5").text.splitlines()[1] == top_class
    screenshot = os.environ.get("KERAS_ALEXNET_DEMO_SCREENSHOT")  # docs/figures/demo.png
    if screenshot:
        browser.save_screenshot(screenshot)


@pytest.mark.slow
@pytest.mark.large
def test_a_pixel_bomb_and_a_text_file_are_refused_in_words_and_the_page_goes_on(
        demo_process, browser, run_cli_here, test_image, tmp_path):
    from image_bytes_test import png_bomb

    (tmp_path / "bomb.png").write_bytes(png_bomb(20000, 20000))
    (tmp_path / "notes.txt").write_text("not an image\n")
    text = upload(browser, demo_process[0], tmp_path / "bomb.png", tmp_path / "notes.txt",
                  expected="notes.txt")
    assert text.splitlines() == [
        "Not classified: bomb.png declares 20000 × 20000 pixels, more than the limit of "
        "16777216",
        "Not classified: notes.txt is not a PNG, JPEG or BMP image"]
    (tmp_path / "good.png").write_bytes(png(test_image))
    expected = predict_words(run_cli_here, tmp_path / "good.png")
    assert upload(browser, demo_process[0], tmp_path / "good.png",
                  expected="good.png").strip() == f"good.png: {expected}"


@pytest.mark.slow
@pytest.mark.large
def test_twenty_requests_at_once_are_all_answered_within_bounded_memory(
        demo_process, run_cli_here, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    images = np.random.default_rng(5).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"image_{index}.png")
        paths[-1].write_bytes(png(image))
    expected = {path.name: predict_words(run_cli_here, path) for path in paths}

    def ask(path):
        client = Client(demo_process[0], verbose=False)
        return client.predict([handle_file(str(path))], api_name="/classify")[0]

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, [paths[i % 4] for i in range(20)]))
    assert answers == [f"- `{paths[i % 4].name}`: {expected[paths[i % 4].name]}"
                       for i in range(20)]
    with open(f"/proc/{demo_process[1]}/status") as status:
        resident = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    assert resident * 1024 < 1.5 * 2 ** 30, f"{resident / 2 ** 20:.2f} GiB resident"
