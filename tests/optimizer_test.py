import keras
import numpy as np
import pytest

from keras_alexnet import TrainConfig
from keras_alexnet.training.optimizer import (
    LinearWarmupDecay,
    TorchSGD,
    build_optimizer,
    learning_rate_per_step,
    learning_rate_schedule,
)


def numpy_softmax_regression_sgd(x, y, kernel, bias, epochs, schedule, momentum, weight_decay,
                                 clip):
    """PyTorch's SGD step, full-batch, on a softmax regression; returns weights and grad norms."""
    params = [kernel.astype(np.float64), bias.astype(np.float64)]
    buffers = [np.zeros_like(p) for p in params]
    onehot = np.eye(kernel.shape[1])[y]
    history, norms = [], []
    for epoch in range(epochs):
        logits = x @ params[0] + params[1]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        error = (p - onehot) / len(x)
        grads = [x.T @ error, error.sum(0)]
        norm = np.sqrt(sum((g ** 2).sum() for g in grads))
        norms.append(norm)
        scale = min(1.0,
                    clip / norm)  # torch.nn.utils.clip_grad_norm_ (its 1e-6 is negligible here)
        lr = schedule(epoch)
        for i, g in enumerate(grads):
            g = g * scale + weight_decay * params[i]
            buffers[i] = momentum * buffers[i] + g
            params[i] = params[i] - lr * buffers[i]
        history.append([q.copy() for q in params])
    return history, norms


def test_fit_matches_pytorch_sgd_with_clipping_and_the_lr_drop():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(32, 6)) * rng.choice([0.3, 4.0], size=(32, 1))).astype(np.float32)
    y = rng.integers(0, 4, size=32)
    config = TrainConfig(learning_rate=0.2, momentum=0.9, weight_decay=0.01, global_clipnorm=2.0,
                         lr_decay_epoch=3, lr_decay_factor=0.1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    kernel, bias = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    model.set_weights([kernel, bias])
    model.compile(optimizer=build_optimizer(config, steps_per_epoch=1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e,
                                            logs: seen.append(model.get_weights()))
    model.fit(x, y, batch_size=32, epochs=6, shuffle=False, verbose=0,
              callbacks=[keras.callbacks.LearningRateScheduler(learning_rate_schedule(config)),
                         record])

    schedule = learning_rate_schedule(config)
    expected, norms = numpy_softmax_regression_sgd(x, y, kernel, bias, 6, schedule, 0.9, 0.01, 2.0)
    assert max(norms) > 2.0 > min(norms), "the data must give both clipped and unclipped steps"
    for got, want in zip(seen, expected):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_learning_rate_schedule_is_the_seed_step_decay():
    schedule = learning_rate_schedule(TrainConfig())
    assert [schedule(e) for e in range(30)] == [0.01] * 30          # epochs 1–30
    assert schedule(30) == pytest.approx(0.001) and schedule(48) == pytest.approx(0.001)


def test_momentum_buffer_survives_a_learning_rate_change():
    """PyTorch's buffer holds gradients, not lr·gradients: after an LR drop the next step is
    lr_new·(m·buf + g), which Keras' own SGD (velocity = m·v − lr·g) would not give."""
    variable = keras.Variable(np.array([1.0], np.float32))
    optimizer = TorchSGD(learning_rate=1.0, momentum=0.5)
    optimizer.apply_gradients([(np.array([1.0], np.float32), variable)])   # buf=1, w=0
    optimizer.learning_rate = 0.1
    optimizer.apply_gradients([(np.array([1.0], np.float32), variable)])   # buf=1.5, w=-0.15
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.15], rtol=1e-6)


def test_config_round_trip():
    optimizer = TorchSGD(learning_rate=0.02, momentum=0.8, coupled_weight_decay=1e-3,
                         global_clipnorm=2.0)
    restored = TorchSGD.from_config(optimizer.get_config())
    assert (restored.momentum, restored.coupled_weight_decay, restored.global_clipnorm) == (
        0.8, 1e-3, 2.0)
    assert restored.weight_decay is None  # no decoupled decay on top of the coupled one


def test_keras_weight_decay_is_keras_decoupled_decay_beside_the_coupled_one():
    """`weight_decay` means what it means in every Keras optimizer (w ← w − lr·wd·w before the
    update) and is independent of PyTorch's coupled `coupled_weight_decay`."""
    variable = keras.Variable(np.array([2.0], np.float32))
    optimizer = TorchSGD(learning_rate=0.1, momentum=0.0, coupled_weight_decay=0.5,
                         weight_decay=0.25)
    assert optimizer.get_config()["weight_decay"] == 0.25
    optimizer.apply_gradients([(np.array([1.0], np.float32), variable)])
    decayed = 2.0 - 0.1 * 0.25 * 2.0                      # Keras' decoupled decay first: 1.95
    expected = decayed - 0.1 * (1.0 + 0.5 * decayed)      # then SGD on g + 0.5·w: 1.7525
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [expected], rtol=1e-6)


@pytest.mark.parametrize("kwargs", [{"momentum": 1.0}, {"coupled_weight_decay": -1.0}])
def test_bad_hyperparameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TorchSGD(**kwargs)


def test_under_loss_scaling_the_update_is_the_unscaled_one():
    """mixed_float16 (what "auto" picks on a T4) wraps TorchSGD in Keras' LossScaleOptimizer: it
    must unscale before TorchSGD clips the global norm and adds the L2 term."""
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]
    grads = [rng.normal(size=(3, 2)).astype("float32") * 3, rng.normal(size=(2,)).astype("float32")]
    results = []
    for wrap in (False, True):
        variables = [keras.Variable(value) for value in initial]
        optimizer = TorchSGD(0.1, momentum=0.9, coupled_weight_decay=1e-2, global_clipnorm=2.0)
        if wrap:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=1024.0)
        for _ in range(2):
            scale = optimizer.scale_loss(1.0)
            optimizer.apply([keras.ops.convert_to_tensor(g * scale) for g in grads], variables)
        results.append([keras.ops.convert_to_numpy(v) for v in variables])
    assert np.sqrt(sum((g ** 2).sum() for g in grads)) > 2.0  # the clip acts
    for plain, scaled in zip(*results):
        np.testing.assert_allclose(scaled, plain, rtol=1e-6)
    assert not np.allclose(results[0][0], initial[0])


def test_nesterov_matches_pytorch_nesterov_sgd():
    """Three steps of `TorchSGD(nesterov=True)` against PyTorch's rule written in NumPy."""
    rng = np.random.default_rng(1)
    weights = rng.normal(size=5)
    gradients = [rng.normal(size=5) for _ in range(3)]
    variable = keras.Variable(weights.astype(np.float32))
    optimizer = TorchSGD(learning_rate=0.1, momentum=0.9, coupled_weight_decay=0.01, nesterov=True)
    expected, buffer = weights.copy(), np.zeros(5)
    for gradient in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient.astype(np.float32)),
                                    variable)])
        g = gradient + 0.01 * expected
        buffer = 0.9 * buffer + g
        expected = expected - 0.1 * (g + 0.9 * buffer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, rtol=1e-5, atol=1e-6)
    plain = TorchSGD(learning_rate=0.1, momentum=0.9, nesterov=False)
    assert TorchSGD.from_config(optimizer.get_config()).nesterov and not plain.nesterov


def test_cosine_schedule_warms_up_linearly_then_follows_the_cosine_to_zero():
    config = TrainConfig(lr_schedule="cosine", learning_rate=0.05, warmup_epochs=2.0, epochs=10)
    steps_per_epoch = 10
    schedule = build_optimizer(config, steps_per_epoch)._learning_rate
    total, warmup = 100, 20

    def expected(step):
        if step < warmup:
            return 0.05 * step / warmup
        return 0.05 * 0.5 * (1 + np.cos(np.pi * (step - warmup) / (total - warmup)))

    for step in (0, 5, 19, 20, 37, 60, 99, 100):
        assert float(schedule(step)) == pytest.approx(expected(step), abs=1e-7), step


def test_cosine_schedule_without_warmup_starts_at_the_peak():
    config = TrainConfig(lr_schedule="cosine", learning_rate=0.1, epochs=4)
    schedule = build_optimizer(config, steps_per_epoch=25)._learning_rate
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(50)) == pytest.approx(0.05, abs=1e-7)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-7)


def triangle(step, peak, total, warmup):
    """The one-cycle rate by its definition: up a straight line, then down one to 0."""
    if step < warmup:
        return peak * step / warmup
    return peak * max(0.0, (total - step) / (total - warmup))


@pytest.mark.parametrize("warmup", [0, 3, 12])
def test_the_linear_schedule_rises_then_falls_to_zero_in_straight_lines(warmup):
    schedule = LinearWarmupDecay(peak=0.4, total_steps=40, warmup_steps=warmup)
    got = [float(schedule(step)) for step in range(46)]
    want = [triangle(step, 0.4, 40, warmup) for step in range(46)]
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert got[warmup] == pytest.approx(0.4) and got[40:] == [0.0] * 6
    rebuilt = LinearWarmupDecay.from_config(schedule.get_config())
    assert float(rebuilt(7)) == pytest.approx(want[7])


def test_a_linear_run_warms_up_over_its_warmup_epochs_and_ends_at_zero():
    config = TrainConfig(lr_schedule="linear", learning_rate=0.2, warmup_epochs=1.5, epochs=4)
    schedule = learning_rate_per_step(config, steps_per_epoch=10)
    assert isinstance(schedule, LinearWarmupDecay)
    assert (schedule.peak, schedule.total_steps, schedule.warmup_steps) == (0.2, 40, 15)
    with pytest.raises(ValueError, match="warmup_steps must be in"):
        LinearWarmupDecay(peak=0.1, total_steps=10, warmup_steps=10)


def built_plan(schedule):
    """`schedule` in a built `TorchSGD` of a one-layer model: its plan variables made."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=TorchSGD(learning_rate=schedule), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.mark.parametrize("replannable", [False, True])
def test_replan_refuses_a_schedule_without_a_plan(replannable):
    """A schedule made without `replannable=True`, or not yet built into its optimizer, has no
    plan to move: `replan` says so instead of failing inside."""
    schedule = LinearWarmupDecay(peak=0.1, total_steps=100, warmup_steps=10,
                                 replannable=replannable)
    with pytest.raises(ValueError, match="replan needs replannable=True"):
        schedule.replan(5, 50)
    if not replannable:
        built_plan(schedule)
        with pytest.raises(ValueError, match="replan needs replannable=True"):
            schedule.replan(5, 50)


@pytest.mark.parametrize("warmup", [0, 4])
def test_a_replan_to_an_end_already_passed_ends_at_the_next_step(warmup):
    """Moving the end to or before the current step (a deadline already reached) keeps this
    step's rate and reaches 0 at the next one, never a negative or rising rate."""
    schedule = LinearWarmupDecay(peak=0.1, total_steps=100, warmup_steps=warmup,
                                 replannable=True)
    built_plan(schedule)
    rate = triangle(10, 0.1, 100, warmup)
    schedule.replan(10, 3)
    got = [float(schedule(step)) for step in (10, 11, 12, 50)]
    np.testing.assert_allclose(got, [rate, 0.0, 0.0, 0.0], atol=1e-7)


def test_a_budgeted_model_reloads_with_its_replanned_schedule(tmp_path):
    """`best.keras` of a budgeted run: `load_model` rebuilds the re-plannable schedule, its plan
    variables among the optimizer's (the count matches), holding the re-planned end."""
    schedule = LinearWarmupDecay(peak=0.1, total_steps=100, warmup_steps=0, replannable=True)
    model = built_plan(schedule)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), batch_size=4, epochs=2, verbose=0)
    schedule.replan(2, 40)
    path = str(tmp_path / "best.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    rebuilt = loaded.optimizer.learning_rate_schedule
    assert rebuilt.get_config() == {"peak": 0.1, "total_steps": 100, "warmup_steps": 0,
                                    "replannable": True}
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    assert [float(variable) for variable in rebuilt.plan] == [0.0, 2.0, pytest.approx(0.098), 40.0]
    want = [0.098 * (40 - step) / 38 for step in (2, 20, 39)] + [0.0]
    np.testing.assert_allclose([float(rebuilt(step)) for step in (2, 20, 39, 40)], want,
                               rtol=1e-5, atol=1e-7)
