"""Constructors: shapes, head options, input_tensor, architecture facts, bad input."""
import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.weights import WeightsError

# ImageNet models are built at 64x64 to keep the suite fast; the layout is the same.
SMALL_IMAGENET = (64, 64, 3)
BINARY_CONVS = {"BiRealNet18": 16, "BiRealNet34": 32, "BiRealNet50": 47, "BiRealNet20": 18}


def test_every_model_is_registered_with_its_facts():
    names = [spec.name for spec in zoo.list_models()]
    assert set(BINARY_CONVS) <= set(names)
    for spec in zoo.list_models():
        assert spec.constructor is getattr(zoo, spec.name)
        assert spec.task == f"Train{spec.name}"
        assert spec.paper.bibtex.startswith("@")


@pytest.mark.parametrize("name", sorted(BINARY_CONVS))
@pytest.mark.parametrize("include_top", [True, False])
def test_forward_shapes(name, include_top):
    spec = zoo.get_model_spec(name)
    shape = SMALL_IMAGENET if spec.default_input_shape[0] == 224 else (28, 28, 1)
    model = spec.constructor(input_shape=shape, include_top=include_top, num_classes=7)
    x = np.random.default_rng(0).uniform(0, 255, (2, *shape)).astype("float32")
    y = model(x, training=False).numpy()
    if include_top:
        assert y.shape == (2, 7)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    else:
        stride = 32 if shape[0] == 64 else 4
        assert y.shape[:3] == (2, shape[0] // stride, shape[1] // stride)


@pytest.mark.parametrize("name", sorted(BINARY_CONVS))
def test_number_of_binary_convolutions(name):
    spec = zoo.get_model_spec(name)
    shape = SMALL_IMAGENET if spec.default_input_shape[0] == 224 else (32, 32, 3)
    cost = zoo.complexity(spec.constructor(input_shape=shape))
    assert sum(layer.kind == "binary" for layer in cost.layers) == BINARY_CONVS[name]


def test_every_binary_conv_of_bireal18_has_a_real_shortcut():
    model = zoo.BiRealNet18(input_shape=SMALL_IMAGENET)
    binary = [l for l in model.layers if getattr(l, "input_quantizer", None) is not None]
    assert len(binary) == 16
    for conv in binary:
        assert isinstance(conv.input_quantizer, lq.quantizers.ApproxSign)
        assert isinstance(conv.kernel_quantizer, lq.quantizers.MagnitudeAwareSign)
        (bn,) = [n.outbound_layer for n in conv._outbound_nodes]
        (add,) = [n.outbound_layer for n in bn._outbound_nodes]
        assert isinstance(bn, tf.keras.layers.BatchNormalization)
        assert isinstance(add, tf.keras.layers.Add)
        # The other input of the addition is the block input itself or its projection.
        others = [t for t in add.input if t is not bn.output]
        assert len(others) == 1


def test_default_inputs_and_num_classes():
    assert zoo.BiRealNet18().input_shape == (None, 224, 224, 3)
    assert zoo.BiRealNet18().output_shape == (None, 1000)
    model = zoo.BiRealNet20()
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)


def test_input_tensor_inside_a_larger_model():
    inputs = tf.keras.Input((28, 28, 1))
    features = zoo.BiRealNet20(input_tensor=inputs, include_top=False)
    outputs = tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(features.output))
    model = tf.keras.Model(inputs, outputs)
    assert model(np.zeros((1, 28, 28, 1), "float32")).shape == (1, 3)
    assert features.input_shape == (None, 28, 28, 1)


def test_preprocessing_inside_the_model_normalizes_pixels():
    model = zoo.BiRealNet20(input_shape=(28, 28, 1))
    norm = model.get_layer("preprocessing")
    out = norm(np.array([0.0, 127.5, 255.0]).reshape(1, 1, 3, 1)).numpy().ravel()
    np.testing.assert_allclose(out, [-1, 0, 1], atol=1e-6)
    plain = zoo.BiRealNet20(input_shape=(28, 28, 1), include_preprocessing=False)
    assert all(l.name != "preprocessing" for l in plain.layers)
    assert zoo.complexity(plain).params == zoo.complexity(model).params


def test_constructors_are_keyword_only():
    with pytest.raises(TypeError):
        zoo.BiRealNet20((32, 32, 3))


def test_every_constructor_takes_the_shared_arguments_keyword_only():
    import inspect

    from zoo.models.base import PUBLIC_FIELDS

    for spec in zoo.list_models():
        parameters = inspect.signature(spec.constructor).parameters
        assert set(PUBLIC_FIELDS) <= set(parameters), spec.name
        assert all(p.kind == p.KEYWORD_ONLY for p in parameters.values()), spec.name


def test_groupnet_without_preprocessing():
    model = zoo.GroupNetResNet20(input_shape=(28, 28, 1), num_bases=1, include_preprocessing=False)
    assert all(l.name != "preprocessing" for l in model.layers)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(28, 28)), "(height, width, channels)"),
        (dict(input_shape=(4, 4, 1)), "at least 8x8"),
        (dict(weights="imagenet"), "not published for BiRealNet20"),
        (dict(weights="no/such/file.h5"), "does not exist"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        zoo.BiRealNet20(**kwargs)


def test_imagenet_weights_fail_clearly_until_published():
    with pytest.raises(WeightsError) as info:
        zoo.BiRealNet18(weights="imagenet")
    assert "zoo TrainBiRealNet18" in str(info.value)


def test_weights_file_round_trip(tmp_path):
    model = zoo.BiRealNet20(input_shape=(28, 28, 1))
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    again = zoo.BiRealNet20(input_shape=(28, 28, 1), weights=str(path))
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


# Networks whose float twin is themselves in float (named NAME + "FP"); the others'
# twin is the float network of their backbone (BiRealNet20FP for the ResNet-20s).
OWN_TWINS = [spec.name for spec in zoo.list_models() if spec.twin == spec.name + "FP"]


@pytest.mark.parametrize("name", OWN_TWINS)
def test_a_float_twin_is_its_binary_network_with_every_binary_op_in_float(name):
    """The robustness track's float twin: the same weights, and its FLOPs are the binary
    network's BOPs + FLOPs (a dense twin has one base: compared with the binary at K=1)."""
    classifier = zoo.get_model_spec(name).kind.name == "classification"
    shape, fields = ((28, 28, 1), {}) if classifier else ((64, 64, 3), {"num_bases": 1})
    binary = getattr(zoo, name)(input_shape=shape, **fields)
    float_twin = getattr(zoo, name + "FP")(input_shape=shape)
    assert [w.shape for w in float_twin.weights] == [w.shape for w in binary.weights]
    cost = zoo.complexity(float_twin)
    assert cost.bops == 0 and cost.flops == zoo.complexity(binary).bops + zoo.complexity(binary).flops
