"""The precision probe: the faster precision chosen from measured rates, the rates cached per host
and per network, a changed host probing again, a damaged cache ignored; and `resolve` on a CPU
taking the probe's choice for a run long enough to pay for it."""

import json

import pytest

from keras_alexnet.config import TrainConfig
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


def test_train_step_rate_times_the_model_it_is_given():
    """The rate is the batch over the fastest timed step: a model whose steps sleep a known
    time reads as that many images a second."""
    import time

    import keras

    class Slow(keras.Sequential):
        def train_on_batch(self, *args, **kwargs):
            time.sleep(0.2)
            return super().train_on_batch(*args, **kwargs)

    model = Slow([keras.Input((2, 2, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    rate = host_probe.train_step_rate(model, batch_size=64, num_classes=10, steps=2)
    assert 64 / 0.3 < rate < 64 / 0.2
