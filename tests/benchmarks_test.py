"""The benchmark scripts run in their short mode (CI), so they cannot rot. Their speeds depend on
the machine and are not targets here; what each reports is checked against what the test knows:
the images it gave, and the process's own wall time, which bounds every time a script reports."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO, softmax

# Every test here trains or starts processes, each importing a backend of its own.
pytestmark = [pytest.mark.slow, pytest.mark.large]

COMMON = {"benchmark", "device", "device_kind", "backend", "keras", "date", "cpu_count"}


def run_benchmark(script, *args, backend="tensorflow"):
    """The script's JSON lines, each with `process_seconds`: the process's wall time measured
    here."""
    start = time.perf_counter()
    process = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", script), "--quick",
                              *args], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "KERAS_BACKEND": backend})
    seconds = time.perf_counter() - start
    assert process.returncode == 0, process.stderr[-3000:]
    return [{**json.loads(line), "process_seconds": seconds}
            for line in process.stdout.splitlines() if line.startswith("{")]


def measured_seconds(images, images_per_second, process_seconds):
    """The time a rate was measured over: positive and within the process's own wall time (a
    rate of the wrong unit, or over the wrong images, falls outside)."""
    seconds = images / images_per_second
    assert 0 < seconds < process_seconds
    return seconds


def test_input_pipeline_reports_both_variants_and_their_ratio(cifar_dir):
    lines = run_benchmark("input_pipeline.py", "--data-dir", cifar_dir)
    assert [line["variant"] for line in lines] == ["batched", "per_image", "ratio"]
    assert all(COMMON <= set(line) for line in lines)
    batched, per_image, ratio = lines
    assert batched["images"] == per_image["images"] == 600  # 5 passes × 120 test images
    times = [measured_seconds(line["images"], line["images_per_second"], line["process_seconds"])
             for line in (batched, per_image)]
    assert ratio["batched_over_per_image"] == pytest.approx(times[1] / times[0], rel=0.01)


def test_paper_pipeline_reports_the_pipeline_the_step_and_their_ratio(cifar_dir):
    lines = run_benchmark("paper_pipeline.py", "--data-dir", cifar_dir)
    assert [line["part"] for line in lines] == ["input_pipeline", "train_step", "ratio"]
    assert all(COMMON <= set(line) for line in lines)
    pipeline, step, ratio = lines
    assert pipeline["dataset"] == "jpeg_500x375" and pipeline["batch_size"] == 16
    # --quick: a pass over 256 JPEG files; two train steps of 16 images
    measured_seconds(256, pipeline["images_per_second"], pipeline["process_seconds"])
    measured_seconds(2 * 16, step["images_per_second"], step["process_seconds"])
    assert ratio["pipeline_over_step"] == pytest.approx(
        pipeline["images_per_second"] / step["images_per_second"], rel=0.02)


def test_train_step_reports_each_precision_with_compile_time(cifar_dir):
    lines = run_benchmark("train_step.py", "--data-dir", cifar_dir, "--steps-per-execution", "2")
    assert [line["precision"] for line in lines] == ["float32", "mixed_bfloat16"]
    for line in lines:
        assert COMMON <= set(line) and line["batch_size"] == 8 and line["steps"] == 2
        assert 0 < line["ms_per_step"] * line["steps"] / 1000 < line["process_seconds"]
        assert 0 < line["compile_seconds"] < line["process_seconds"]
        assert line["network"] == "alexnet" and line["augmentation"] is True
        assert line["steps_per_execution"] == 2


def test_train_step_splits_off_the_network_and_the_augmentation(cifar_dir):
    lines = run_benchmark("train_step.py", "--data-dir", cifar_dir, "--network", "trivial",
                          "--no-augmentation", "--precisions", "float32",
                          "--steps-per-execution", "1")
    (line,) = lines
    assert line["network"] == "trivial" and line["augmentation"] is False
    assert line["steps_per_execution"] == 1


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_seed_recipe_reports_wall_time_where_it_went_and_test_accuracy(cifar_dir, backend,
                                                                       tmp_path):
    """On TensorFlow with train()'s defaults (checkpoints, figures, export); on JAX without
    figures and export (the JAX export runs TensorFlow in another process: slow here)."""
    extra = ["--no-figures", "--no-export"] if backend == "jax" else []
    (line,) = run_benchmark("seed_recipe.py", "--data-dir", cifar_dir, "--compilation-cache-dir",
                            tmp_path / "cache", *extra, backend=backend)
    assert COMMON <= set(line) and line["epochs"] == 1 and line["checkpoint_every"] is None
    assert line["backend"] == backend
    seconds = line["seconds"]
    assert list(seconds) == ["imports", "data", "build", "train", "validation",
                             "checkpoint_writes", "fit_other", "test", "figures", "export"]
    assert line["wall_seconds"] == pytest.approx(sum(seconds.values()), abs=0.1)
    assert line["wall_seconds_to_metrics"] == pytest.approx(
        line["wall_seconds"] - seconds["figures"] - seconds["export"], abs=0.1)
    assert seconds["train"] == line["first_epoch_seconds"] > 0
    assert seconds["checkpoint_writes"] > 0  # the last epoch writes best.keras
    made_files = ("figures", "export") if backend == "tensorflow" else ()
    for name, value in seconds.items():
        assert value > (0.5 if name in made_files else -0.01), name
    assert 0.0 <= line["test_accuracy"] <= 1.0
    if backend == "jax":  # compilation measured, and taken out of the wall time
        assert 0 < line["compile_seconds"] < line["wall_seconds"]
        assert line["compiled_programs"] >= 3 and line["compilation_cache_hits"] == 0  # cold
        assert line["wall_seconds_without_compile"] == pytest.approx(
            line["wall_seconds"] - line["compile_seconds"], abs=0.15)
    else:  # estimated from the first epoch
        assert line["compile_seconds"] is None and line["compiled_programs"] is None
        assert line["wall_seconds_without_compile"] == pytest.approx(
            line["wall_seconds"] - line["compile_seconds_estimate"], abs=0.15)


def test_recipes_prints_one_line_per_variant_with_its_changes(cifar_dir):
    lines = run_benchmark("recipes.py", "--data-dir", cifar_dir)
    assert [line["name"] for line in lines] == ["seed", "tweaked@stride2-batch_norm"]
    seed, variant = lines
    assert COMMON <= set(seed) and (seed["epochs"], seed["train_subset"]) == (1, 64)
    assert seed["changes"] == {} and variant["recipe"] == "tweaked"
    assert variant["changes"] == {"conv1_stride": 2, "batch_norm": False}
    # Without test-time augmentation the reported accuracy is the single view's.
    assert seed["test_accuracy"] == seed["test_accuracy_single_view"]
    assert variant["warmup_epochs"] == 0.25 and variant["wall_seconds"] > 0


def test_hostile_inputs_reports_each_case_with_its_time_memory_and_outcome():
    lines = run_benchmark("hostile_inputs.py")
    assert [line["case"] for line in lines] == ["gif_frame_bomb", "predict_fifo"]
    assert all(COMMON <= set(line) and line["seconds"] >= 0 and line["peak_rss_mb"] > 0
               and line["peak_growth_mb"] >= 0 for line in lines)
    gif, fifo = lines
    assert gif["outcome"].startswith("image_bytes[0] is a GIF, which is refused")
    assert fifo["outcome"] == "exit 2"
    assert fifo["stderr"][0].endswith("pipe.png is not a regular file")


def test_time_to_accuracy_reports_each_seed_from_process_start_and_their_mean(cifar_dir):
    run, mean = run_benchmark("time_to_accuracy.py", "--data-dir", cifar_dir, "--recipe", "fast",
                              "--seeds", "3", "--batch-size", "64", "--learning-rate", "0.05")
    assert COMMON <= set(run) and (run["recipe"], run["epochs"], run["seed"]) == ("fast", 1, 3)
    assert (run["batch_size"], run["learning_rate"]) == (64, 0.05)  # the overrides reach train()
    phases = run["seconds"]
    assert 0 < run["seconds_per_epoch"] <= phases["fit"]
    assert {"imports", "data", "build", "fit", "test", "figures", "export"} <= set(phases)
    # From process start: the imports and every phase of train() fit inside the wall time.
    assert 0 < sum(phases[name] for name in ("imports", "data", "build", "fit", "test",
                                             "figures", "export")) <= run["wall_seconds"] + 0.5
    # 256 images: a run too short to pay for the precision probe trains in float32.
    assert run["performance"]["mixed_precision"] == "float32"
    assert 0 <= run["test_accuracy_single_view"] <= 1 and run["train_images_per_second"] > 0
    # By hand: the fast model's multiply-adds per image, forward (conv1–conv5 at 32², 16², 8², 8²,
    # 8² with 3×3 kernels; fc6–fc8), ×2 FLOPs each, ×3 for the backward pass.
    convs = [(32 * 32, 3, 32), (16 * 16, 32, 96), (8 * 8, 96, 192), (8 * 8, 192, 128),
             (8 * 8, 128, 128)]
    forward = sum(area * 9 * fan_in * width for area, fan_in, width in convs)
    forward += 4 * 4 * 128 * 512 + 512 * 512 + 512 * 10
    assert run["train_flops_per_image"] == 6 * forward == 260_929_536
    assert run["trained_images"] == 256  # --quick: 1 epoch of 256 images
    assert mean["mean_of_seeds"] == [3] and mean["epochs"] == 1
    accuracy = mean["test_accuracy"]
    assert accuracy["min"] == accuracy["max"] == run["test_accuracy"]
    assert accuracy["mean"] == pytest.approx(run["test_accuracy"], abs=5e-5)


def test_make_preset_writes_the_runs_model_with_its_measured_accuracy_and_command(cifar_dir,
                                                                                  tmp_path):

    import keras_alexnet
    from keras_alexnet import cli
    from keras_alexnet.data.cifar10 import load_cifar10

    run_dir = str(tmp_path / "run")
    keras_alexnet.train(recipe="fast", epochs=1, width_multiplier=0.25, dense_units=32,
                        train_subset=64, validation_size=100, batch_size=32, data_dir=cifar_dir,
                        output_dir=run_dir, export=False, figures=False, verbose=0)
    make = [sys.executable, os.path.join(REPO, "benchmarks", "make_preset.py"), run_dir, "tiny",
            "--recipe", "fast", "--description", "a tiny test", "--data-dir", cifar_dir,
            "--presets-dir", str(tmp_path / "presets")]
    refused = subprocess.run([*make, "--max-float16-drop", "-1"], capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode == 1 and "more than -1.0: not written" in refused.stderr
    assert not (tmp_path / "presets" / "tiny").exists()
    made = subprocess.run(make, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    metadata = json.load(open(tmp_path / "presets" / "tiny" / "metadata.json"))
    # The command, run through the command line's parser, gives the run's config.
    words = metadata["command"].split()
    assert words[:4] == ["keras-alexnet", "train", "--recipe", "fast"]
    args = cli.build_parser().parse_args(words[1:])
    args.check(args)
    expected = json.load(open(os.path.join(run_dir, "config.json")))
    assert args.config.replace(output_dir=run_dir, data_dir=cifar_dir).to_dict() == expected
    assert "--no-export" in words and "--output-dir" not in words
    assert words[-2:] == ["--data-dir", "DIR"]  # a place for the user's copy, not this one's
    assert metadata["config"]["width_multiplier"] == 0.25 and metadata["seed"] == 0
    # Where this machine kept the data, the run and its caches is not the preset's business.
    paths = {"data_dir", "output_dir", "saved_models_dir", "compilation_cache_dir"}
    assert set(metadata["config"]) == set(expected) - paths
    assert str(tmp_path) not in json.dumps(metadata)
    # The accuracies are the shipped model's on every test image, by NumPy here.
    model = keras_alexnet.AlexNetImageClassifier.from_preset(str(tmp_path / "presets" / "tiny"))
    data = load_cifar10(cifar_dir)
    logits = model.predict(data.x_test, verbose=0)
    mirrored = model.predict(data.x_test[:, :, ::-1], verbose=0)
    assert metadata["test_accuracy_single_view"] == pytest.approx(
        (logits.argmax(1) == data.y_test).mean())
    assert metadata["test_accuracy"] == pytest.approx(
        ((softmax(logits) + softmax(mirrored)).argmax(1) == data.y_test).mean())


def test_export_formats_reports_each_runtimes_accuracy_size_and_speed(cifar_dir):
    import numpy as np

    from keras_alexnet import AlexNet
    from keras_alexnet.data.cifar10 import load_cifar10
    from keras_alexnet.models.catalogue import DEFAULT_PRESET

    lines = run_benchmark("export_formats.py", "--data-dir", cifar_dir)
    assert [line["format"] for line in lines] == ["savedmodel", "litert", "litert_int8", "onnx"]
    assert all(COMMON <= set(line) for line in lines)
    data = load_cifar10(cifar_dir)
    keras_classes = AlexNet.from_preset(DEFAULT_PRESET).predict(data.x_test, verbose=0).argmax(1)
    accuracy = float((keras_classes == data.y_test).mean())
    by_format = {line["format"]: line for line in lines}
    for name in ("savedmodel", "litert", "onnx"):  # float32: Keras' classes
        assert by_format[name]["test_accuracy"] == pytest.approx(accuracy, abs=0.011)
        assert by_format[name]["test_images"] == len(data.x_test) == 100
    assert by_format["litert_int8"]["bytes"] < 0.3 * by_format["litert"]["bytes"]
    weights = sum(np.asarray(w).size for w in AlexNet.from_preset(DEFAULT_PRESET).get_weights())
    # float32 weights (batch norm folded into the convolutions: a little fewer of them)
    assert 3.9 * weights <= by_format["litert"]["bytes"] < 4.2 * weights
    for line in lines:
        measured_seconds(100, line["images_per_second_batch_256"], line["process_seconds"])
        measured_seconds(32, line["images_per_second_batch_1"], line["process_seconds"])
