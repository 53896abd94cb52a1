"""Group-Net: architecture, fused bases against an unfused reference, quantizers, cost, LCE (native grouped)."""
import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norm, value_and_grad

import zoo
from zoo import tflite
from zoo.blocks import (
    AggregateBranches,
    GroupedQuantConv2D,
    RepeatBranches,
    SoftGate,
    groupnet_basic_block,
)
from zoo.quantizers import GroupNetWeightSign, Tanh

# ImageNet models are built at 64x64 to keep the suite fast; the layout is the same.
SMALL_IMAGENET = (64, 64, 3)
STEM, FILTERS18 = 64, (64, 128, 256, 512)


def images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


def binary_convs(model):
    return [l for l in model.layers if isinstance(l, lq.layers.QuantConv2D)]


# -- registry and architecture -----------------------------------------------------------
def test_registered_with_the_papers_results_k5_first():
    expected = {"GroupNetResNet18": 5, "GroupNetResNet34": 2, "GroupNetResNet50": 2, "GroupNetResNet20": 0}
    for name, rows in expected.items():
        spec = zoo.get_model_spec(name)
        assert spec.family == "Group-Net" and spec.constructor is getattr(zoo, name)
        assert "1811.10413" in spec.paper.url and spec.paper.bibtex.startswith("@inproceedings")
        assert len(spec.reported) == rows
        if rows:
            assert spec.reported[0].note == "K=5"
    r18 = {r.note: (r.top1, r.top5) for r in zoo.get_model_spec("GroupNetResNet18").reported}
    assert r18 == {"K=5": (64.8, 85.7), "K=1": (55.6, 78.6), "K=3": (62.5, 84.2),
                   "K=4": (64.2, 85.6), "K=8": (67.5, 88.0)}
    assert zoo.get_model_spec("GroupNetResNet50").reported[1].top1 == 72.8
    assert zoo.get_model_spec("GroupNetResNet20").default_input_shape == (32, 32, 3)


@pytest.mark.parametrize(
    "name, shape, kwargs, include_top, features",
    [
        ("GroupNetResNet18", SMALL_IMAGENET, dict(), True, None),
        ("GroupNetResNet18", SMALL_IMAGENET, dict(), False, (2, 2, 512)),
        ("GroupNetResNet18", SMALL_IMAGENET, dict(num_bases=1, aggregation="mean"), False, (2, 2, 512)),
        ("GroupNetResNet34", SMALL_IMAGENET, dict(num_bases=3, soft_gates=False), True, None),
        ("GroupNetResNet50", SMALL_IMAGENET, dict(num_bases=3, aggregation="mean"), False, (2, 2, 2048)),
        ("GroupNetResNet20", (28, 28, 1), dict(num_bases=3, soft_gates=False, aggregation="mean"), True, None),
        ("GroupNetResNet20", (28, 28, 1), dict(num_bases=3, soft_gates=False), False, (7, 7, 64)),
    ],
)
def test_forward_shapes(name, shape, kwargs, include_top, features):
    model = getattr(zoo, name)(input_shape=shape, include_top=include_top, num_classes=7, **kwargs)
    y = model(images(shape), training=False).numpy()
    if include_top:
        assert y.shape == (2, 7)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    else:
        # The last aggregate Y, not the K branch streams.
        assert y.shape == (2, *features)
        assert model.layers[-1].name.endswith("_aggregate")
    assert np.isfinite(y).all()


def test_defaults():
    model = zoo.GroupNetResNet20()
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert binary_convs(model)[0].output_shape[-1] == 5 * 16  # num_bases=5 by default
    assert len([l for l in model.layers if isinstance(l, SoftGate)]) == 8  # soft gates on
    assert model(images((32, 32, 3)), training=False).shape == (2, 10)
    with pytest.raises(TypeError):
        zoo.GroupNetResNet20((32, 32, 3))


def test_shared_downsampling_is_the_official_models_count_and_tied_per_base_downsampling():
    own, shared = (zoo.GroupNetResNet18(input_shape=SMALL_IMAGENET, aggregation="mean", shared_downsample=s)
                   for s in (False, True))
    trainable = [int(sum(np.prod(w.shape) for w in m.trainable_weights)) for m in (own, shared)]
    # The official model.py (mean of the bases, no scales) builds 55,662,127 parameters:
    # 5 x 10,993,152 block convs and BNs, one 173,824 downsampling (three binary 1x1 convs
    # 64-128, 128-256, 256-512 and their BNs), 7 gates, the stem's 9,536, the dense 513,000.
    assert trainable == [55_662_127 + 4 * 173_824, 55_662_127]
    assert zoo.complexity(own).bops == zoo.complexity(shared).bops


@pytest.mark.parametrize("training", [False, True])
def test_a_shared_downsampling_equals_each_base_s_own_with_the_same_weights(training):
    k, c, f = 3, 4, 8

    def block(shared):
        x = tf.keras.Input((8, 8, k * c))
        quantizers = zoo.get_model_spec("GroupNetResNet20").factory(num_bases=k).quantizers
        return tf.keras.Model(x, groupnet_basic_block(x, f, 2, k, "g", quantizers, shared_downsample=shared))

    shared, own = block(True), block(False)
    randomize_batch_norm(shared)
    for layer in own.layers:
        weights = shared.get_layer(layer.name).get_weights() if layer.weights else []
        if layer.name.startswith("g_shortcut"):  # the shared layer's weights, once per base
            weights = [np.concatenate([w] * k, axis=-1) for w in weights]
        layer.set_weights(weights)
    assert shared.get_layer("g_shortcut_conv").kernel.shape == (1, 1, c, f)
    x = images((8, 8, k * c), n=4, seed=1) / 128 - 1
    np.testing.assert_allclose(shared(x, training=training), own(x, training=training), rtol=1e-5, atol=1e-5)


def test_published_checkpoints_keep_each_base_s_downsampling():
    model = zoo.GroupNetResNet20(weights="fashion_mnist")  # its index entry predates the option
    assert model.get_layer("stage2_block1_shortcut_conv").kernel.shape[-1] == 5 * 32
    with pytest.raises(ValueError, match="trained with shared_downsample=False"):
        zoo.GroupNetResNet20(weights="fashion_mnist", shared_downsample=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(aggregation="sum"), 'aggregation must be "scales"'),
        (dict(aggregation="Mean"), "not 'Mean'"),
        (dict(num_bases=0), "num_bases must be a positive integer"),
        (dict(input_shape=(4, 4, 1)), "at least 8x8"),
    ],
)
def test_bad_options_raise_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.GroupNetResNet20(**kwargs)


@pytest.mark.parametrize("soft_gates", [True, False])
def test_resnet18_layout_quantizers_and_connections(soft_gates):
    k = 3
    model = zoo.GroupNetResNet18(input_shape=SMALL_IMAGENET, num_bases=k, soft_gates=soft_gates)
    convs = binary_convs(model)
    # 16 binary 3x3 convs and 3 binarized 1x1 downsamplings, each fusing K bases.
    assert sorted(c.kernel_size[0] for c in convs) == [1] * 3 + [3] * 16
    for conv in convs:
        assert type(conv) is GroupedQuantConv2D
        assert conv.groups == k and conv.pad_values == 1.0 and not conv.use_bias
        assert isinstance(conv.input_quantizer, lq.quantizers.ApproxSign)
        assert isinstance(conv.kernel_quantizer, GroupNetWeightSign) and conv.kernel_quantizer.groups == k
        assert conv.kernel_constraint is None
        assert conv.input_shape[-1] % k == 0 and conv.output_shape[-1] % k == 0
        # Each base starts Glorot-uniform for its own fans (Xavier, as the official code).
        size, fan_in, fan_out = conv.kernel_size[0], conv.input_shape[-1] // k, conv.filters // k
        limit = np.sqrt(6 / (size * size * (fan_in + fan_out)))
        assert 0.95 * limit < np.abs(conv.kernel.numpy()).max() <= limit * (1 + 1e-6)
        (after,) = [n.outbound_layer for n in conv._outbound_nodes]
        if conv.kernel_size[0] == 3:  # conv -> ReLU -> BN -> add
            (bn,) = [n.outbound_layer for n in after._outbound_nodes]
            assert isinstance(after, tf.keras.layers.ReLU)
            assert isinstance(bn, tf.keras.layers.BatchNormalization)
            assert isinstance(bn._outbound_nodes[0].outbound_layer, tf.keras.layers.Add)
        else:  # binarized downsampling: conv -> BN
            assert isinstance(after, tf.keras.layers.BatchNormalization)
    # Full precision: only the stem conv and the classifier.
    real = [l.name for l in model.layers if type(l) in (tf.keras.layers.Conv2D, tf.keras.layers.Dense)]
    assert real == ["stem_conv", "logits"]
    stem = [l.name for l in model.layers if l.name.startswith("stem")]
    assert stem == ["stem_conv", "stem_pool", "stem_bn"]  # no ReLU
    assert model.get_layer("stem_bn")._outbound_nodes[0].outbound_layer.name == "stage1_block1_inputs"
    gates = [l for l in model.layers if isinstance(l, SoftGate)]
    repeats = [l for l in model.layers if isinstance(l, RepeatBranches)]
    assert (len(gates), len(repeats)) == ((7, 1) if soft_gates else (0, 8))
    aggregates = [l for l in model.layers if isinstance(l, AggregateBranches)]
    assert len(aggregates) == 8
    assert model.get_layer("pool")._inbound_nodes[0].inbound_layers.name == "stage4_block2_aggregate"


def test_initial_gates_and_lambdas():
    model = zoo.GroupNetResNet20(num_bases=5)
    lambdas = np.concatenate([l.scales.numpy() for l in model.layers if isinstance(l, AggregateBranches)])
    gates = np.array([l.gate.numpy() for l in model.layers if isinstance(l, SoftGate)])
    # The official code's torch.rand(1): uniform in [0, 1), not all equal.
    assert lambdas.shape == (45,) and lambdas.min() >= 0 and lambdas.max() < 1 and lambdas.std() > 0.1
    assert gates.shape == (8,) and gates.min() >= 0 and gates.max() < 1 and len(set(gates)) == 8
    mean = zoo.GroupNetResNet20(num_bases=2, aggregation="mean")
    assert not any("scales" in w.name for w in mean.weights)


def test_resnet50_bottleneck_of_three_binary_convs_per_base():
    model = zoo.GroupNetResNet50(input_shape=SMALL_IMAGENET, num_bases=2, num_classes=7)
    assert model(images(SMALL_IMAGENET), training=False).shape == (2, 7)
    convs = {c.name: c for c in binary_convs(model)}
    assert len(convs) == 16 * 3 + 4  # three per bottleneck, a downsampling per stage
    block = [convs[f"stage2_block1_{n}_conv"] for n in ("conv1", "conv2", "conv3", "shortcut")]
    assert [c.kernel_size[0] for c in block] == [1, 3, 1, 1]
    assert [c.strides[0] for c in block] == [1, 2, 1, 2]
    # Kernels (input channels per base, K x output channels per base).
    assert [c.kernel.shape[-2:] for c in block] == [(256, 256), (128, 256), (128, 1024), (256, 1024)]
    assert all(c.groups == 2 for c in convs.values())
    for layer in model.layers:  # lambda starts at 1/K
        if isinstance(layer, AggregateBranches):
            np.testing.assert_array_equal(layer.scales.numpy(), [0.5, 0.5])


def test_real_valued_twin_for_stage_one():
    factory = zoo.get_model_spec("GroupNetResNet20").factory
    twin = factory(input_quantizer="tanh", kernel_quantizer=None, num_bases=2, input_shape=(28, 28, 1)).build()
    binary = factory(num_bases=2, input_shape=(28, 28, 1)).build()
    for conv in binary_convs(twin):
        assert isinstance(conv.input_quantizer, Tanh) and conv.kernel_quantizer is None
    assert zoo.complexity(twin).bops == 0
    # Same weights: stage 2 starts from stage 1.
    assert [w.shape for w in twin.weights] == [w.shape for w in binary.weights]
    binary.set_weights(twin.get_weights())


# -- GroupedQuantConv2D against larq's grouped QuantConv2D ------------------------------
@pytest.mark.parametrize("training", [False, True], ids=["per-group", "native-grouped"])
@pytest.mark.parametrize("pad_values, use_bias, strides", [(1.0, False, 2), (0.0, True, 1)])
def test_grouped_quant_conv_equals_larqs_grouped_conv(pad_values, use_bias, strides, training):
    kwargs = dict(filters=6, kernel_size=3, strides=strides, groups=3, padding="same",
                  pad_values=pad_values, use_bias=use_bias, activation="relu",
                  input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(groups=3))
    ours, larqs = GroupedQuantConv2D(**kwargs), lq.layers.QuantConv2D(**kwargs)
    x = tf.Variable(np.random.default_rng(15).normal(size=(2, 7, 7, 9)).astype("float32"))
    ours.build(x.shape)
    larqs.build(x.shape)
    rng = np.random.default_rng(16)
    larqs.set_weights([rng.normal(size=w.shape) for w in ours.get_weights()])
    ours.set_weights(larqs.get_weights())
    results = []
    for layer in (ours, larqs):
        with tf.GradientTape() as tape:
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * np.arange(y.shape[-1], dtype="float32"))
        results.append([y, *tape.gradient(loss, [x, *layer.trainable_weights])])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert GroupedQuantConv2D.from_config(ours.get_config()).groups == 3


@pytest.mark.parametrize("training, onednn, convolutions", [(True, "1", 1), (False, "1", 3), (True, "0", 3)])
def test_training_runs_one_grouped_convolution_where_onednn_has_it(training, onednn, convolutions, monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)  # read at each trace (zoo.stack.onednn)
    layer = GroupedQuantConv2D(6, 3, groups=3, padding="same", pad_values=1.0, use_bias=False,
                               input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(groups=3))
    graph = tf.function(lambda x: layer(x, training=training)).get_concrete_function(
        tf.TensorSpec((2, 7, 7, 9))).graph
    assert sum(op.type == "Conv2D" for op in graph.get_operations()) == convolutions


@pytest.mark.parametrize("dilations, kernel_size", [((2, 3, 4), 3), ((1, 5, 2), 3), ((6, 7, 8), 1)])
def test_group_dilations_equal_separate_dilated_convs(dilations, kernel_size):
    """BPAC: base k of a fused convolution dilated by its own rate, padded with +1."""
    quantizers = dict(input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(groups=1))
    fused = GroupedQuantConv2D(6, kernel_size, groups=3, padding="same", pad_values=1.0, use_bias=False,
                               group_dilations=dilations, input_quantizer="approx_sign",
                               kernel_quantizer=GroupNetWeightSign(groups=3))
    x = tf.constant(np.random.default_rng(21).normal(size=(2, 11, 9, 12)).astype("float32"))
    fused.build(x.shape)
    kernel = np.random.default_rng(22).normal(size=fused.kernel.shape).astype("float32")
    fused.set_weights([kernel])
    separate = []
    for g, (part, rate) in enumerate(zip(tf.split(x, 3, axis=-1), dilations)):
        conv = lq.layers.QuantConv2D(2, kernel_size, padding="same", pad_values=1.0, use_bias=False,
                                     dilation_rate=rate, **quantizers)
        conv.build(part.shape)
        conv.set_weights([kernel[..., 2 * g:2 * g + 2]])
        separate.append(conv(part))
    np.testing.assert_allclose(fused(x), tf.concat(separate, -1), rtol=1e-5, atol=1e-5)
    assert GroupedQuantConv2D.from_config(fused.get_config()).group_dilations == dilations


def test_group_dilations_need_a_rate_per_group_and_stride_1():
    with pytest.raises(ValueError, match="one positive rate per group"):
        GroupedQuantConv2D(6, 3, groups=3, padding="same", group_dilations=(2, 3))
    with pytest.raises(ValueError, match="strides=1"):
        GroupedQuantConv2D(6, 3, groups=3, strides=2, padding="same", group_dilations=(2, 3, 4))


# -- the fused implementation against K separate branches --------------------------------
K, C, F, SIZE = 3, 4, 8, 6


def fused_group(aggregation, soft_gates):
    """One downsampling group (stride 2, C -> F channels per base) between Inputs."""
    branches = tf.keras.Input((SIZE, SIZE, K * C))
    aggregate = tf.keras.Input((SIZE, SIZE, C))
    if soft_gates:
        x = SoftGate(K, name="g_gate")([branches, aggregate])
    else:
        x = RepeatBranches(K, name="g_inputs")(aggregate)

    def quantizers():
        return dict(input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(groups=K))

    y = groupnet_basic_block(x, F, 2, K, "g", quantizers)
    out = AggregateBranches(K, aggregation, name="g_aggregate")(y)
    model = tf.keras.Model([branches, aggregate], [y, out])
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if isinstance(layer, (SoftGate, AggregateBranches)):
            layer.set_weights([rng.normal(0, 1, w.shape) for w in layer.get_weights()])
    randomize_batch_norm(model, seed=8)
    return model


def reference_group(fused, branches, aggregate, aggregation, soft_gates, training):
    """The same group as K separate branches with their own layers (weights copied)."""

    def conv(name, k, size, strides):
        kernel = fused.get_layer(f"g_{name}_conv").kernel.numpy()
        layer = lq.layers.QuantConv2D(
            F, size, strides=strides, padding="same", pad_values=1.0, use_bias=False,
            input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(),  # one scale per layer
        )
        layer.build((None, None, None, kernel.shape[2]))
        layer.set_weights([kernel[..., k * F:(k + 1) * F]])
        return layer

    def bn(name, k):
        layer = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        layer.build((None, None, None, F))
        layer.set_weights([w[k * F:(k + 1) * F] for w in fused.get_layer(f"g_{name}_bn").get_weights()])
        return layer

    if soft_gates:
        s = tf.sigmoid(fused.get_layer("g_gate").gate).numpy()
        inputs = [s * branches[..., k * C:(k + 1) * C] + (1 - s) * aggregate for k in range(K)]
    else:
        inputs = [aggregate] * K
    outputs = []
    for k, x in enumerate(inputs):
        r = bn("shortcut", k)(conv("shortcut", k, 1, 2)(x), training=training)
        u = bn("conv1", k)(tf.nn.relu(conv("conv1", k, 3, 2)(x)), training=training) + r
        y = bn("conv2", k)(tf.nn.relu(conv("conv2", k, 3, 1)(u)), training=training) + u
        outputs.append(y.numpy())
    if aggregation == "scales":
        scales = fused.get_layer("g_aggregate").scales.numpy()
        total = sum(scales[k] * y for k, y in enumerate(outputs))
    else:
        total = sum(outputs) / K
    return np.concatenate(outputs, axis=-1), total


@pytest.mark.parametrize("aggregation", ["scales", "mean"])
@pytest.mark.parametrize("soft_gates", [True, False])
@pytest.mark.parametrize("training", [False, True])
def test_fused_group_equals_separate_branches(aggregation, soft_gates, training):
    fused = fused_group(aggregation, soft_gates)
    rng = np.random.default_rng(9)
    branches = rng.normal(0, 1, (4, SIZE, SIZE, K * C)).astype("float32")
    aggregate = rng.normal(0, 1, (4, SIZE, SIZE, C)).astype("float32")
    y, total = fused([branches, aggregate], training=training)
    ref_y, ref_total = reference_group(fused, branches, aggregate, aggregation, soft_gates, training)
    assert y.shape == (4, SIZE // 2, SIZE // 2, K * F) and total.shape == (4, SIZE // 2, SIZE // 2, F)
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(total, ref_total, rtol=1e-5, atol=1e-5)
    # The bases differ (their own weights), so the test would see a wrong slicing.
    assert np.abs(ref_y[..., :F] - ref_y[..., F:2 * F]).max() > 0.1


# -- quantizers ----------------------------------------------------------------------------
@pytest.mark.parametrize("groups", [1, 3])
def test_groupnet_weight_sign_one_mean_abs_scale_per_group(groups):
    rng = np.random.default_rng(10)
    w = (rng.normal(0, 1, (3, 3, 4, 6)) * np.repeat([0.1, 1.0, 5.0], 2)).astype("float32")
    w[0, 0, 0, 0] = 0.0
    upstream = rng.normal(size=w.shape).astype("float32")
    q, grad = value_and_grad(GroupNetWeightSign(groups=groups), w, upstream)
    slices = np.split(w, groups, axis=-1)
    scales = np.concatenate([np.full(s.shape[-1], np.abs(s).mean()) for s in slices])
    np.testing.assert_allclose(q, np.where(w >= 0, 1.0, -1.0) * scales, rtol=1e-6)
    assert q[0, 0, 0, 0] > 0  # sign(0) = +1
    assert len(np.unique(np.abs(q).round(6))) == groups
    # Identity gradient: no clipping (|w| up to ~15 here), no scale, no term from mean |W|.
    assert np.abs(w).max() > 5
    np.testing.assert_array_equal(grad, upstream)


def test_groupnet_weight_sign_serialization():
    q = GroupNetWeightSign(groups=4)
    assert q.get_config()["groups"] == 4 and q.precision == 1
    assert GroupNetWeightSign.from_config(q.get_config()).groups == 4
    assert isinstance(lq.quantizers.get("groupnet_weight_sign"), GroupNetWeightSign)
    layer = lq.layers.QuantConv2D(8, 3, groups=4, input_quantizer="approx_sign", kernel_quantizer=q)
    clone = lq.layers.QuantConv2D.from_config(layer.get_config())
    assert isinstance(clone.kernel_quantizer, GroupNetWeightSign) and clone.kernel_quantizer.groups == 4
    with pytest.raises(ValueError, match="divides into 4 slices"):
        q(tf.zeros((3, 3, 2, 6)))


def test_tanh_quantizer_for_the_real_valued_stage():
    assert isinstance(lq.quantizers.get("tanh"), Tanh) and Tanh.precision == 32
    x = np.linspace(-4, 4, 81).astype("float32")
    upstream = np.random.default_rng(11).normal(size=x.shape).astype("float32")
    y, grad = value_and_grad(Tanh(), x, upstream)
    np.testing.assert_allclose(y, np.tanh(x), atol=1e-6)
    np.testing.assert_allclose(grad, upstream * (1 - np.tanh(x) ** 2), atol=1e-6)


# -- cost --------------------------------------------------------------------------------
def resnet18_per_base(size=224):
    """Binary MACs and binary weights of one base of every block, from the layout."""
    size //= 4  # stem conv /2, max-pool /2
    cin, macs3, macs1, kernels, bn_channels = STEM, 0, 0, 0, 0
    for s, filters in enumerate(FILTERS18):
        for b in range(2):
            strides = 2 if b == 0 and s > 0 else 1
            size //= strides
            macs3 += 9 * (cin + filters) * filters * size * size
            kernels += 9 * (cin + filters) * filters
            bn_channels += 2 * filters
            if strides > 1 or cin != filters:
                macs1 += cin * filters * size * size
                kernels += cin * filters
                bn_channels += filters
            cin = filters
    return macs3, macs1, kernels, bn_channels


@pytest.fixture(scope="module")
def costs():
    return {k: zoo.complexity(zoo.GroupNetResNet18(num_bases=k)) for k in (1, 5)}


@pytest.mark.parametrize("k", [1, 5])
def test_resnet18_cost_is_k_times_the_binary_work(costs, k):
    macs3, macs1, kernels, bn_channels = resnet18_per_base()
    assert macs3 == pytest.approx(1.676e9, rel=5e-4)  # Bi-Real-18's binary 3x3 work
    assert macs1 == pytest.approx(1.93e7, rel=0.01)  # the 1x1 downsamplings, now binary
    cost = costs[k]
    assert cost.bops == k * (macs3 + macs1)
    # FLOPs: the stem and the classifier only (no full-precision shortcut).
    assert cost.flops == 112 * 112 * 7 * 7 * 3 * 64 + 512 * 1000
    assert cost.ops == pytest.approx(cost.bops / 64 + cost.flops)
    assert cost.binary_params == k * kernels
    # Float: stem conv and BN, the bases' BNs (2 numbers a channel), K lambdas and a gate
    # per block but the first, the dense layer.
    floats = 7 * 7 * 3 * 64 + 2 * 64 + k * 2 * bn_channels + 8 * k + 7 + 512 * 1000 + 1000
    assert cost.float_params == floats
    assert cost.memory_mbit == pytest.approx((k * kernels + 32 * floats) / 1e6)


def test_resnet18_cost_grows_with_the_bases(costs):
    assert costs[5].bops == 5 * costs[1].bops
    assert costs[5].flops == costs[1].flops
    assert costs[5].memory_mbit > costs[1].memory_mbit
    assert costs[5].bops == pytest.approx(8.477e9, rel=1e-3)
    assert costs[5].ops == pytest.approx(2.51e8, rel=1e-3)


# -- Larq Compute Engine ---------------------------------------------------------------------
@pytest.mark.xfail(strict=True, raises=(AssertionError, RuntimeError), reason=(
    "LCE 0.16 and larq's native grouped QuantConv2D: with 16 input channels per group "
    "the converter refuses LceBconv2d ('the number of input channels per-group must be a "
    "multiple of 32') and keeps a float CONV_2D; with 32 it converts, but the default "
    "LceBconv2d kernel (zoo.deploy) fails to prepare ('Grouped binary "
    "convolutions are not supported with this kernel'). Hence GroupedQuantConv2D."))
@pytest.mark.parametrize("channels_per_group", [16, 32])
def test_lce_native_grouped_binary_conv(channels_per_group):
    inputs = tf.keras.Input((6, 6, 2 * channels_per_group))
    outputs = lq.layers.QuantConv2D(
        2 * channels_per_group, 3, groups=2, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(groups=2),
    )(inputs)
    flatbuffer = tflite.convert(tf.keras.Model(inputs, outputs))
    assert tflite.op_counts(flatbuffer)["LceBconv2d"] == 1
    zoo.deploy(flatbuffer)(np.ones((1, 6, 6, 2 * channels_per_group), "float32"))
