"""IR-Net: Libra-PB and EDE against the paper's closed forms, the schedule, and the
architectures against the official code (github.com/htqin/IR-Net)."""
import contextlib

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import value_and_grad

import zoo
from zoo.models.irnet import EDEUpdate, ede_schedules
from zoo.quantizers import EDESchedule, EDESign, LibraPBSign, ede_t_k


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0, 3.0, 10.0])
def test_ede_forward_is_sign_and_backward_the_derivative_of_k_tanh_tx(t):
    k = max(1 / t, 1.0)
    schedule = EDESchedule()
    schedule.assign(t, k)
    x = np.linspace(-3, 3, 121).astype("float32")
    upstream = np.random.default_rng(0).normal(size=x.shape).astype("float32")
    y, grad = value_and_grad(EDESign(schedule), x, upstream)
    np.testing.assert_array_equal(y, np.where(x >= 0, 1.0, -1.0))
    expected = upstream * k * t * (1 - np.tanh(t * x) ** 2)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6 * k * t)  # float32 tanh
    if t <= 1:
        assert np.all(grad[np.abs(x) > 1] != 0)  # no clipping outside [-1, 1]


def test_ede_schedule_formula():
    assert ede_t_k(0.0) == pytest.approx((0.1, 10.0))
    assert ede_t_k(0.5) == pytest.approx((1.0, 1.0))
    assert ede_t_k(1.0) == pytest.approx((10.0, 1.0))
    assert ede_t_k(0.25) == pytest.approx((0.1 * 10**0.5, 1 / (0.1 * 10**0.5)))
    assert ede_t_k(0.5, t_min=1e-3, t_max=10.0) == pytest.approx((0.1, 10.0))


def libra_reference(w):
    """Libra-PB in NumPy: per output channel (last axis), unbiased std."""
    axes = tuple(range(w.ndim - 1))
    centered = w - w.mean(axis=axes, keepdims=True)
    std = centered.std(axis=axes, keepdims=True, ddof=1)
    standardized = centered / std
    scale = 2.0 ** np.round(np.log2(np.abs(standardized).mean(axis=axes, keepdims=True)))
    return standardized, std, scale


@pytest.mark.parametrize("shape", [(3, 3, 8, 4), (16, 5)])
def test_libra_pb_forward_balanced_signs_and_power_of_two_scale(shape):
    rng = np.random.default_rng(1)
    w = (rng.normal(0.3, 0.7, shape) * rng.uniform(0.1, 3, shape[-1])).astype("float32")
    q = LibraPBSign()(w).numpy()
    standardized, _, scale = libra_reference(w)
    np.testing.assert_allclose(q, scale * np.where(standardized >= 0, 1, -1), rtol=1e-6)
    # Balanced: the signs are those of w minus its channel mean, not of w.
    assert np.any(np.sign(q) != np.sign(w))
    exponents = np.log2(np.abs(q))
    np.testing.assert_array_equal(exponents, np.round(exponents))


def test_libra_pb_scale_below_one_for_a_peaked_channel():
    # 95 weights at the mean and 5 far out: std ~ 2.2, mean |w_std| ~ 5 * 4.5 / 100 ~ 0.225,
    # so s = 2^round(log2 0.225) = 2^-2.
    w = np.concatenate([np.zeros(95), [10, -10, 9, -9, 11]]).astype("float32")
    w += np.random.default_rng(2).normal(0, 1e-3, w.shape).astype("float32")
    q = LibraPBSign()(w.reshape(-1, 1)).numpy()
    assert np.allclose(np.abs(q), 0.25)


@pytest.mark.parametrize("t", [0.1, 2.0])
def test_libra_pb_gradient_flows_through_the_standardization(t):
    """dL/dw = s (g - mean(g)) / std - s sum(g w_std) w_std / ((N - 1) std), g = u EDE'(w_std)."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (3, 3, 4, 6)).astype("float32")
    upstream = rng.normal(size=w.shape).astype("float32")
    schedule = EDESchedule()
    schedule.assign(t, max(1 / t, 1.0))
    _, grad = value_and_grad(LibraPBSign(schedule), w, upstream)
    standardized, std, scale = libra_reference(w)
    axes, n = (0, 1, 2), 3 * 3 * 4
    g = upstream * max(1 / t, 1.0) * t * (1 - np.tanh(t * standardized) ** 2)
    expected = scale * (
        (g - g.mean(axis=axes, keepdims=True)) / std
        - (g * standardized).sum(axis=axes, keepdims=True) * standardized / ((n - 1) * std)
    )
    np.testing.assert_allclose(grad, expected, rtol=2e-4, atol=1e-6)


def test_libra_pb_straight_through_variant_for_the_ablation():
    w = np.random.default_rng(4).normal(size=(8, 3)).astype("float32")
    upstream = np.ones_like(w)
    _, grad = value_and_grad(LibraPBSign(estimator="ste"), w, upstream)
    # With an identity gradient through the sign, a constant upstream cancels out.
    np.testing.assert_allclose(grad, 0, atol=1e-5)
    with pytest.raises(ValueError, match="estimator"):
        LibraPBSign(estimator="tanh")


def test_one_schedule_drives_every_quantizer_of_a_model():
    model = zoo.IRNetResNet20(input_shape=(28, 28, 1))
    (schedule,) = ede_schedules(model)
    convs = [l for l in model.layers if isinstance(l, lq.layers.QuantConv2D)]
    assert len(convs) == 18
    for conv in convs:
        assert isinstance(conv.input_quantizer, EDESign) and isinstance(conv.kernel_quantizer, LibraPBSign)
        assert conv.input_quantizer.schedule is schedule is conv.kernel_quantizer.schedule
        assert conv.kernel_constraint is None
    # The schedule is training state, not a model weight.
    assert all("schedule" not in w.name for w in model.weights)


def test_ablation_switches_and_real_activations():
    ste = zoo.get_model_spec("IRNetResNet20").factory(ede=False, libra_pb=False).build()
    conv = ste.get_layer("stage1_block1_conv1_conv")
    assert isinstance(conv.input_quantizer, lq.quantizers.SteSign)
    assert isinstance(conv.kernel_quantizer, lq.quantizers.SteSign)
    assert ede_schedules(ste) == []
    real = zoo.IRNetResNet20(binary_activations=False)
    assert real.get_layer("stage1_block1_conv1_conv").input_quantizer is None
    cost = zoo.complexity(real)
    assert cost.bops == 0 and cost.binary_params > 0


# Trainable parameters of the official models (conv and dense weights and biases, BN's
# gamma and beta; PyTorch's `parameters()`), worked out from their layer shapes, for
# 3-channel input and the paper's classes.
OFFICIAL_PARAMETERS = {
    # CIFAR-10/ResNet20/1w1a/resnet.py and 1w32a/resnet.py: the same parameter shapes.
    "IRNetResNet20": 269_850,
    "IRNetResNet20W1A32": 269_850,
    # CIFAR-10/VGG-Small: 3x3 convs 3-128-128-256-256-512-512 without bias, 6 BN, dense
    # 8192 -> 10 with bias.
    "IRNetVGGSmall": 4_660_106,
    # ImageNet/ResNet18/1w1a and 1w32a/models/resnet.py build 11,692,536, of which an
    # unused `bn3 = BatchNorm1d(1000)` (never called in forward) holds 2,000: left out.
    "IRNetResNet18": 11_692_536 - 2_000,
    "IRNetResNet18W1A32": 11_692_536 - 2_000,
}


def trainable_parameters(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_parameters_equal_the_official_models(name):
    spec = zoo.get_model_spec(name)
    model = spec.build(input_shape=spec.default_input_shape[:2] + (3,))
    assert trainable_parameters(model) == OFFICIAL_PARAMETERS[name]


@pytest.mark.parametrize("name, shape", [("IRNetResNet20W1A32", (32, 32, 3)), ("IRNetResNet18W1A32", (64, 64, 3))])
def test_the_1w32a_models_are_the_official_relu_basic_blocks_with_real_activations(name, shape):
    model = getattr(zoo, name)(input_shape=shape)
    convs = [layer for layer in model.layers if isinstance(layer, lq.layers.QuantConv2D)]
    assert all(conv.input_quantizer is None and isinstance(conv.kernel_quantizer, LibraPBSign) for conv in convs)
    kinds = [type(layer).__name__ for layer in model.layers]
    blocks = len(convs) // 2
    assert kinds.count("Add") == blocks and "HardTanh" not in kinds  # one shortcut per two binary convs
    small = name == "IRNetResNet20W1A32"
    # ReLU after each block's first conv and its add; the stem's (ImageNet) or the head's (CIFAR).
    assert kinds.count("ReLU") == 2 * blocks + 1
    stem = model.get_layer("stem_bn")
    assert [type(node.outbound_layer).__name__ for node in stem.outbound_nodes] == (
        ["QuantConv2D", "Add"] if small else ["ReLU"])  # CIFAR: no nonlinearity after the stem
    fan = model.get_layer("stage1_block1_conv1_conv").kernel_initializer.mode
    assert fan == ("fan_in" if small else "fan_out")


@pytest.mark.parametrize("name, t_min, fan", [
    ("IRNetResNet20", 1e-3, "fan_in"),  # the official 1W/1A CIFAR script: T_min 1e-3
    ("IRNetResNet20W1A32", 0.1, "fan_in"),
    ("IRNetVGGSmall", 0.1, "fan_out"),
    ("IRNetResNet18", 0.1, "fan_out"),
])
def test_each_model_follows_its_official_script_s_ede_start_and_initialisation(name, t_min, fan):
    factory = zoo.get_model_spec(name).factory()
    assert factory.ede_t_min == t_min and factory.ede_t_max == 10.0
    assert factory.quantizers()["kernel_initializer"].mode == fan


def test_no_paper_number_stands_against_another_network():
    for spec in zoo.list_models():
        for result in spec.reported:
            if "1W/32A" in result.note or "1W/1A" in result.note:
                model = spec.build(input_shape=(64, 64, 3))
                real = {conv.input_quantizer is None for conv in model.layers
                        if isinstance(conv, lq.layers.QuantConv2D)}
                assert real == {"1W/32A" in result.note}, (spec.name, result)


def run_callback(model, epochs, steps, update_every=None):
    callback = EDEUpdate(update_every=update_every)
    seen = []

    class Record(tf.keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            (schedule,) = ede_schedules(self.model)
            seen.append((float(schedule.t), float(schedule.k)))

    x = np.zeros((steps * 4, 28, 28, 1), "float32")
    y = tf.one_hot(np.zeros(steps * 4, "int32"), 10)
    model.compile("sgd", "categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=epochs, callbacks=[callback, Record()], verbose=0)
    return seen


def test_callback_sets_t_and_k_per_epoch():
    seen = run_callback(zoo.IRNetResNet20(input_shape=(28, 28, 1)), epochs=4, steps=2)
    expected = [ede_t_k(e / 4) for e in range(4) for _ in range(2)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)


def test_callback_sets_t_and_k_every_n_steps():
    seen = run_callback(zoo.IRNetResNet20(input_shape=(28, 28, 1)), epochs=2, steps=3, update_every=2)
    expected = [ede_t_k((s - s % 2) / 6) for s in range(6)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)


def test_a_reloaded_model_keeps_the_schedules_its_callback_drives(tmp_path):
    # The whole-model round trip of every model is a contract (tests/test_contracts.py).
    # h5 gives each quantizer its own copy of the shared schedule; EDEUpdate sets them all.
    zoo.IRNetVGGSmall(input_shape=(28, 28, 1)).save(tmp_path / "m.h5")
    assert len(ede_schedules(tf.keras.models.load_model(tmp_path / "m.h5"))) >= 1


def test_fused_backward_passes_train_as_the_op_by_op_ones():
    """IRNetResNet20 made as before (`zoo.fused.unfused()`: op-by-op EDE and hardtanh
    backward passes) and as now: the same weights get the same gradients."""
    from zoo import fused
    from zoo.blocks import HardTanh

    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype("float32")
    y = tf.one_hot([1, 2, 3, 4], 10)
    grads = []
    for unfused in (True, False):
        tf.keras.utils.set_random_seed(0)
        with fused.unfused() if unfused else contextlib.nullcontext():
            model = zoo.IRNetResNet20(input_shape=(28, 28, 1))
        flags = {l.fused for l in model.layers if isinstance(l, HardTanh)}
        assert flags == {not unfused}
        with tf.GradientTape() as tape:
            loss = tf.keras.losses.categorical_crossentropy(y, model(x, training=True))
        grads.append([g.numpy() for g in tape.gradient(loss, model.trainable_weights)])
    for before, now in zip(*grads):
        # XLA's tanh rounds its own way (float32), and 19 layers carry it back to the stem.
        np.testing.assert_allclose(now, before, rtol=1e-3, atol=1e-4 * np.abs(before).max())
