"""Cost counting against ../shared/papers/complexity.md's reference numbers."""
import larq as lq
import pytest
import tensorflow as tf

import zoo

# Reference numbers at 224x224, 1000 classes (BOPs, FLOPs, OPs); the papers' own OPs
# and memory are in the registry.
REFERENCE = {
    "BiRealNet18": (1.676e9, 1.378e8, 1.640e8),
    "BiRealNet34": (3.526e9, 1.378e8, 1.929e8),
}


@pytest.fixture(scope="module")
def costs():
    return {name: zoo.complexity(getattr(zoo, name)()) for name in REFERENCE}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_numbers(costs, name):
    bops, flops, ops = REFERENCE[name]
    cost = costs[name]
    assert cost.bops == pytest.approx(bops, rel=5e-4)
    assert cost.flops == pytest.approx(flops, rel=5e-4)
    assert cost.ops == pytest.approx(ops, rel=5e-4)
    paper = zoo.get_model_spec(name).reported[0]
    assert cost.ops == pytest.approx(paper.ops, rel=0.01)  # the paper's rounding
    assert cost.memory_mbit == pytest.approx(paper.memory_mbit, rel=0.01)


def test_flops_split_into_stem_shortcuts_and_classifier(costs):
    layers = {l.name: l for l in costs["BiRealNet18"].layers}
    assert layers["stem_conv"].flops == 112 * 112 * 7 * 7 * 3 * 64
    assert layers["logits"].flops == 512 * 1000
    shortcuts = sum(l.flops for l in layers.values() if "shortcut" in l.name)
    assert shortcuts == pytest.approx(1.93e7, rel=0.01)


def test_bireal18_memory_about_33_5_mbit(costs):
    cost = costs["BiRealNet18"]
    assert cost.memory_mbit == pytest.approx(33.5, abs=0.1)
    assert cost.binary_params == 10_985_472  # the 16 binary 3x3 kernels
    assert cost.memory_mb == pytest.approx(cost.memory_mbit / 8)
    assert sum(l.memory_mbit for l in cost.layers) == pytest.approx(cost.memory_mbit)


def test_matches_larq_summary_of_larq_zoo_birealnet(costs):
    from larq_zoo.literature import BiRealNet

    profile = lq.models.ModelProfile(BiRealNet(weights=None))
    assert costs["BiRealNet18"].bops == profile.op_count("mac", 1)
    assert costs["BiRealNet18"].flops == profile.op_count("mac", 32)


def test_grouped_convolution_is_counted_per_group_and_preprocessing_is_free():
    inputs = tf.keras.Input((8, 8, 4))
    x = tf.keras.layers.Normalization(mean=0.0, variance=1.0)(inputs)
    x = lq.layers.QuantConv2D(
        8, 3, padding="same", groups=2, use_bias=False,
        input_quantizer="ste_sign", kernel_quantizer="ste_sign",
    )(x)
    cost = zoo.complexity(tf.keras.Model(inputs, x))
    assert cost.bops == 8 * 8 * 3 * 3 * (4 // 2) * 8
    assert cost.flops == 0 and cost.float_params == 0
    assert cost.binary_params == 3 * 3 * 2 * 8


def test_a_binary_kernel_on_real_inputs_counts_as_flops():
    inputs = tf.keras.Input((4, 4, 2))
    x = lq.layers.QuantConv2D(3, 1, use_bias=False, kernel_quantizer="ste_sign")(inputs)
    cost = zoo.complexity(tf.keras.Model(inputs, x))
    assert (cost.bops, cost.flops, cost.binary_params) == (0, 4 * 4 * 2 * 3, 6)


def test_table_lists_layers_and_totals(costs):
    text = costs["BiRealNet18"].table()
    assert "stage4_conv4_conv" in text and "OPs     1.64e+08" in text
