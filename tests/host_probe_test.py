"""The precision probe: the faster precision chosen from measured rates, the rates cached per host
and per network, a changed host probing again, a damaged cache ignored; and `resolve` on a CPU
taking the probe's choice for a run long enough to pay for it."""

import json
import os
import platform

import pytest

from keras_alexnet.config import TrainConfig, choices
from keras_alexnet.training import host_probe, performance
from keras_alexnet.training.performance import Accelerator, PrecisionProbe, resolve

CPU = Accelerator("cpu", "CPU")
SUBJECT = {"network": "cifar", "batch_size": 256, "width_multiplier": 0.5}


class Measured:
    """An injected probe: each precision's rate, and how often each was measured."""

    def __init__(self, float32, bfloat16):
        self.rates = {"float32": float32, "mixed_bfloat16": bfloat16}
        self.calls = []

    def __call__(self, precision):
        self.calls.append(precision)
        return self.rates[precision]


@pytest.mark.parametrize("float32, bfloat16, expected", [
    (574.0, 338.0, "float32"),          # the Intel Xeon of docs/performance.md
    (700.0, 1343.0, "mixed_bfloat16"),  # the AMD EPYC
    (500.0, 500.0, "float32"),          # a tie keeps full precision
])
def test_the_faster_precision_is_chosen(tmp_path, float32, bfloat16, expected):
    measure = Measured(float32, bfloat16)
    choice, rates, cached = host_probe.choose_precision(SUBJECT, measure, 2,
                                                        str(tmp_path / "probes.json"))
    assert (choice, cached) == (expected, False)
    assert rates == {"float32": float32, "mixed_bfloat16": bfloat16}
    assert sorted(measure.calls) == ["float32", "mixed_bfloat16"]


def test_a_second_run_reads_the_cache_and_another_host_or_network_probes_again(tmp_path,
                                                                                monkeypatch):
    path = str(tmp_path / "probes.json")
    host_probe.choose_precision(SUBJECT, Measured(300.0, 600.0), 2, path)
    again = Measured(900.0, 1.0)  # would choose float32 if it were asked
    assert host_probe.choose_precision(SUBJECT, again, 2, path) == (
        "mixed_bfloat16", {"float32": 300.0, "mixed_bfloat16": 600.0}, True)
    assert again.calls == []
    # Another core count, another CPU model, another network: each measured anew.
    assert host_probe.choose_precision(SUBJECT, again, 1, path)[0] == "float32"
    monkeypatch.setattr(host_probe, "cpu_model", lambda: "Intel(R) Xeon(R) (6/207/2)")
    assert host_probe.choose_precision(SUBJECT, Measured(1.0, 2.0), 2, path)[2] is False
    other = {**SUBJECT, "batch_size": 128}
    assert host_probe.choose_precision(other, Measured(1.0, 2.0), 2, path)[2] is False
    entries = json.load(open(path))
    assert len(entries) == 4
    assert {entry["host"]["cores"] for entry in entries.values()} == {"1", "2"}


@pytest.mark.parametrize("damage", [
    b"{not json", b"[]", b'{"k": {"images_per_second": {"float32": -1}}}', b"[" * 100 + b"]" * 100,
])
def test_a_damaged_cache_is_probed_again_and_replaced(tmp_path, damage):
    path = tmp_path / "probes.json"
    path.write_bytes(damage)
    measure = Measured(2.0, 1.0)
    assert host_probe.choose_precision(SUBJECT, measure, 2, str(path))[:2] == (
        "float32", {"float32": 2.0, "mixed_bfloat16": 1.0})
    assert len(measure.calls) == 2
    assert host_probe.choose_precision(SUBJECT, Measured(0.0, 0.0), 2, str(path))[2] is True


def test_the_cpu_model_names_family_model_and_stepping(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: "
                       "207\nmodel name\t: Intel(R) Xeon(R) Platinum\nstepping\t: 2\n")
    assert host_probe.cpu_model(str(cpuinfo)) == "Intel(R) Xeon(R) Platinum (6/207/2)"


def test_resolve_on_a_cpu_takes_the_probe_for_a_long_run_only(tmp_path, monkeypatch):
    monkeypatch.setattr(host_probe, "DEFAULT_CACHE", str(tmp_path / "probes.json"))
    monkeypatch.setattr(host_probe.choose_precision, "__defaults__", (str(tmp_path / "p.json"),))
    measure = Measured(100.0, 180.0)
    long_run = PrecisionProbe(SUBJECT, measure, train_images=performance.PROBE_MIN_IMAGES)
    assert resolve(TrainConfig(), CPU, long_run).mixed_precision == "mixed_bfloat16"
    assert long_run.rates == measure.rates
    short = Measured(100.0, 180.0)
    short_run = PrecisionProbe(SUBJECT, short, train_images=performance.PROBE_MIN_IMAGES - 1)
    assert resolve(TrainConfig(), CPU, short_run).mixed_precision == "float32"
    assert short.calls == []
    # A precision given is never measured.
    given = Measured(100.0, 180.0)
    config = TrainConfig(mixed_precision="float32")
    assert resolve(config, CPU, PrecisionProbe(SUBJECT, given, 10**6)).mixed_precision == "float32"
    assert given.calls == []


def test_train_step_rate_times_the_model_it_is_given(monkeypatch):
    """The rate is the batch over the fastest timed step, the tracing step untimed: on a
    simulated clock whose steps take 9, 0.5, 0.25 and 0.4 s, 64 images a step read as 256/s."""
    import types

    import keras

    clock = types.SimpleNamespace(now=0.0)
    durations = [9.0, 0.5, 0.25, 0.4]
    monkeypatch.setattr(host_probe, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))

    class Timed(keras.Sequential):
        def train_on_batch(self, *args, **kwargs):
            clock.now += durations.pop(0)
            return super().train_on_batch(*args, **kwargs)

    model = Timed([keras.Input((2, 2, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    rate = host_probe.train_step_rate(model, batch_size=64, num_classes=10, steps=3)
    assert rate == 64 / 0.25 and durations == []


@pytest.mark.parametrize("rate", ["Infinity", "NaN", "true", "1e400", "0"])
def test_a_cached_rate_that_is_no_speed_is_measured_again(tmp_path, rate):
    """A rate in the cache that is not a positive finite number (hand-edited, or written by
    another tool) is not believed: the host is measured again."""
    path = tmp_path / "probes.json"
    key = host_probe.probe_key(host_probe.host_fingerprint(2), SUBJECT)
    path.write_text(f'{{"{key}": {{"images_per_second": {{"float32": {rate}, '
                    f'"mixed_bfloat16": 5.0}}}}}}')
    measure = Measured(2.0, 1.0)
    assert host_probe.choose_precision(SUBJECT, measure, 2, str(path)) == (
        "float32", {"float32": 2.0, "mixed_bfloat16": 1.0}, False)
    assert sorted(measure.calls) == ["float32", "mixed_bfloat16"]


def no_cache_here(tmp_path):
    """A cache path where no cache can be: under a regular file."""
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "keras_alexnet" / "probes.json"


def fifo(tmp_path):
    os.mkfifo(tmp_path / "probes.json")
    return tmp_path / "probes.json"


def link_to_dev_zero(tmp_path):
    os.symlink("/dev/zero", tmp_path / "probes.json")
    return tmp_path / "probes.json"


def directory(tmp_path):
    (tmp_path / "probes.json").mkdir()
    return tmp_path / "probes.json"


def sparse_2_gb(tmp_path):
    with open(tmp_path / "probes.json", "wb") as file:
        file.truncate(2 << 30)
    return tmp_path / "probes.json"


@pytest.mark.parametrize("cache", [no_cache_here, fifo, link_to_dev_zero, directory, sparse_2_gb])
def test_a_cache_that_is_no_json_file_only_means_probing(tmp_path, cache, caplog):
    """The probe still chooses; a cache that cannot be read is replaced by a good one where it
    can, and one that cannot be written is left as it was, with no staging file beside it."""
    path = cache(tmp_path)
    measure = Measured(1.0, 3.0)
    assert host_probe.choose_precision(SUBJECT, measure, 2, str(path))[:2] == (
        "mixed_bfloat16", measure.rates)
    assert "probing again" in caplog.text or "cannot be written" in caplog.text
    if cache in (directory, no_cache_here):
        assert not path.is_file()
        assert [name for name in os.listdir(tmp_path) if ".tmp-" in name] == []
    else:  # the damaged cache replaced: a second run reads it
        assert host_probe.choose_precision(SUBJECT, Measured(9.0, 1.0), 2, str(path)) == (
            "mixed_bfloat16", measure.rates, True)
    if cache is link_to_dev_zero:
        assert os.path.exists("/dev/zero") and not os.path.islink(path)


@pytest.mark.parametrize("setting, home", [
    ("/var/cache/me", "/var/cache/me"), ("", None), ("relative/cache", None), (None, None),
])
def test_the_cache_folder_ignores_an_empty_or_relative_xdg_cache_home(monkeypatch, tmp_path,
                                                                       setting, home):
    """As the XDG spec says: a relative `XDG_CACHE_HOME` would put the cache in whatever folder
    the run starts in."""
    if setting is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", setting)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert choices.cache_home() == (home or os.path.join(str(tmp_path), ".cache"))


def test_the_cpu_model_of_unusual_cpuinfo(tmp_path):
    """Empty, binary, colon-only or several-model `cpuinfo` files still name a model: the last
    processor's, else the machine's architecture."""
    cpuinfo = tmp_path / "cpuinfo"
    machine = platform.machine()
    for text, model in [
        (b"", f"{machine} (?/?/?)"),
        (b"no colon here\n\xff\x00:\x01::\n:\n", f"{machine} (?/?/?)"),
        (b"model name: A\ncpu family: 6\nmodel name: B\nmodel: 1\nstepping: 0\n", "B (6/1/0)"),
    ]:
        cpuinfo.write_bytes(text)
        assert host_probe.cpu_model(str(cpuinfo)) == model
    assert host_probe.cpu_model(str(tmp_path)) == (platform.processor() or machine)
