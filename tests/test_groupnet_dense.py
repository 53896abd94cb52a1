"""Group-Net segmentation: the dilated BPAC backbone, the FCN and DeepLab heads, loading a
classification backbone, cost of the whole dense model, save/load and LCE export."""
import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norm
from zookeeper import configure

import zoo
from zoo.blocks import GroupedQuantConv2D
from zoo.complexity import binary_convolutions
from zoo.models.groupnet import bpac_rates

# The small variant trained on 96x96 Fashion-MNIST scenes.
SCENES = dict(input_shape=(96, 96, 1), num_classes=11, backbone="GroupNetResNet20",
              backbone_options={"stem_strides": 2}, output_stride=4)


def images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


def dilations(model):
    return {l.name: l.group_dilations for l in model.layers if isinstance(l, GroupedQuantConv2D)}


def test_bpac_rates_are_the_papers_per_base_rates():
    assert bpac_rates(5, 2) == ((2, 3, 4, 5, 6), (6, 7, 8, 9, 10))
    assert bpac_rates(1, 2) == ((2,), (4,))  # the usual dilated ResNet
    assert bpac_rates(3, 1) == ((2, 3, 4),)


def test_output_stride_8_dilates_the_last_two_stages_base_by_base():
    model = zoo.get_model_spec("GroupNetResNet18").factory(num_bases=5, output_stride=8, include_top=False,
                                    input_shape=(64, 64, 3)).build()
    assert model.output_shape == (None, 8, 8, 512)
    rates = dilations(model)
    for name, r in rates.items():
        stage = int(name[len("stage")])
        if stage == 3 and "shortcut" not in name:
            assert r == (2, 3, 4, 5, 6), name
        elif stage == 4 and "shortcut" not in name:
            assert r == (6, 7, 8, 9, 10), name
        else:
            assert r is None, name  # stages 1-2 and the 1x1 shortcuts are not dilated
    strides = {l.name: l.strides for l in model.layers if isinstance(l, GroupedQuantConv2D)}
    assert strides["stage3_block1_conv1_conv"] == strides["stage4_block1_shortcut_conv"] == (1, 1)
    assert strides["stage2_block1_conv1_conv"] == (2, 2)


def test_dilated_backbone_has_the_classifiers_weights_and_cost_at_its_resolution():
    classifier = zoo.GroupNetResNet18(num_bases=2, include_top=False, input_shape=(224, 224, 3))
    dense = zoo.GroupNetFCN(num_bases=2, include_top=False, input_shape=(224, 224, 3))
    assert [w.shape for w in dense.weights] == [w.shape for w in classifier.weights]
    plain = {l.name: l for l in zoo.complexity(classifier).layers}
    for layer in zoo.complexity(dense).layers:
        if layer.name.startswith(("stage3", "stage4")) and layer.bops:
            factor = 4 if layer.name.startswith("stage3") else 16  # 28x28 instead of 14x14 / 7x7
            assert layer.bops == factor * plain[layer.name].bops, layer.name
        elif layer.bops or layer.flops:
            assert (layer.bops, layer.flops) == (plain[layer.name].bops, plain[layer.name].flops)


@pytest.mark.parametrize("constructor", [zoo.GroupNetFCN, zoo.GroupNetDeepLab])
@pytest.mark.parametrize("shape", [(96, 96, 1), (100, 84, 1)])
def test_dense_models_give_per_pixel_probabilities_at_the_input_size(constructor, shape):
    model = constructor(**{**SCENES, "input_shape": shape}, num_bases=2)
    y = model(images(shape), training=False).numpy()
    assert y.shape == (2, *shape[:2], 11)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    features = constructor(**{**SCENES, "input_shape": shape}, num_bases=2, include_top=False)
    assert features.output_shape[1:] == (-(-shape[0] // 4), -(-shape[1] // 4), 64)


def test_deeplab_aspp_branches_are_k_base_binary_convolutions_averaged():
    model = zoo.GroupNetDeepLab(**SCENES, num_bases=3, aspp_rates=(4, 8, 12))
    branches = {name: r for name, r in dilations(model).items() if name.startswith("aspp")}
    assert branches == {"aspp_b0_conv": None, "aspp_b1_conv": (4, 4, 4), "aspp_b2_conv": (8, 8, 8),
                        "aspp_b3_conv": (12, 12, 12), "aspp_b4_conv": None}
    for name in branches:
        conv = model.get_layer(name)
        assert conv.groups == 3 and conv.output_shape[-1] == 3 * 8  # K bases of C/8 = 8 channels
        assert isinstance(conv.input_quantizer, lq.quantizers.ApproxSign)
        assert model.get_layer(name.replace("conv", "mean")).aggregation == "mean"
    cost = {l.name: l for l in zoo.complexity(model).layers}
    assert cost["aspp_project_conv"].kind == cost["head_conv"].kind == cost["logits"].kind == "full precision"
    # A 3x3 branch: K * 9 * 64 * 8 binary MACs at each of the 24x24 positions.
    assert cost["aspp_b1_conv"].bops == 3 * 9 * 64 * 8 * 24 * 24


def test_fcn_head_is_full_precision_and_its_cost_is_counted():
    model = zoo.GroupNetFCN(**SCENES, num_bases=2)
    cost = {l.name: l for l in zoo.complexity(model).layers}
    assert cost["head_conv"].flops == 9 * 64 * 16 * 24 * 24 and cost["head_conv"].bops == 0
    assert cost["logits"].flops == 16 * 11 * 24 * 24
    total = zoo.complexity(model)
    backbone = zoo.complexity(zoo.GroupNetFCN(**SCENES, num_bases=2, include_top=False))
    assert total.bops == backbone.bops
    assert total.flops == backbone.flops + cost["head_conv"].flops + cost["logits"].flops


def test_backbone_weights_come_from_a_classification_checkpoint():
    entry = next(e for e in zoo.weights.entries() if e.model == "GroupNetResNet20" and not e.include_top)
    k = entry.options["num_bases"]
    model = zoo.GroupNetFCN(**SCENES, num_bases=k, backbone_weights=entry.tag)
    classifier = zoo.GroupNetResNet20(weights=entry.tag, include_top=False)
    for layer in classifier.layers:
        for mine, theirs in zip(model.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    assert model.get_layer("head_conv").get_weights()  # the head stays freshly initialised
    with pytest.raises(ValueError, match=f"trained with {{'num_bases': {k}}}"):
        zoo.GroupNetFCN(**SCENES, num_bases=k + 1, backbone_weights=entry.tag)
    # The full-precision twin starts from the same (latent) weights: quantizers may differ.

    twin = zoo.get_model_spec("GroupNetFCN").factory(**SCENES, num_bases=k, backbone_weights=entry.tag,
                                                     input_quantizer=None, kernel_quantizer=None).build()
    conv = twin.get_layer("stage3_block1_conv1_conv")
    assert conv.input_quantizer is None and conv.kernel_quantizer is None
    np.testing.assert_array_equal(conv.get_weights()[0], classifier.get_layer(conv.name).get_weights()[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(backbone="BiRealNet18"), "backbone must be a Group-Net classifier"),
    (dict(output_stride=16), "output_stride must be a power of two from 2 to 8"),
    (dict(dilation_rates=((2, 3, 4),)), "dilation_rates needs 2 positive rates"),
    (dict(weights="x.h5", backbone_weights="fashion_mnist_k1"), "not both"),
])
def test_bad_dense_options_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.GroupNetFCN(**{**SCENES, "num_bases": 2, **kwargs})


def test_deeplab_has_k_binary_convolutions_per_backbone_layer_and_aspp_branch():
    # Each converts to LCE's (tests/test_contracts.py); its outputs after export are
    # checked for the published checkpoint (benchmarks/export_parity.py, tests/test_openvino.py).
    model = zoo.GroupNetDeepLab(**SCENES, num_bases=2, aspp_rates=(4, 8, 12))
    expected = sum(n for _, n in binary_convolutions(model))
    assert expected == 2 * (18 + 2 + 5)  # K x (18 3x3 convs, 2 downsamplings, 5 ASPP branches)


# -- training ------------------------------------------------------------------------------
def scenes(**fields):
    from zoo.training.datasets import FashionMNISTScenes

    dataset = FashionMNISTScenes()
    configure(dataset, {"num_train": 64, "num_test": 48, **fields})
    return dataset


def test_training_flips_a_scene_and_its_mask_together():
    dataset = scenes()
    data, _ = dataset.test()
    element = next(iter(data))
    image, mask = element["image"].numpy()[..., 0].astype("float32"), element["mask"].numpy()
    tf.random.set_seed(0)
    flips = []
    for _ in range(20):
        x, y = dataset.segmentation_pair(element, training=True)
        x, y = x.numpy()[..., 0], y.numpy()
        flipped = bool(np.array_equal(x, image[:, ::-1]))
        assert flipped or np.array_equal(x, image)
        np.testing.assert_array_equal(y, mask[:, ::-1] if flipped else mask)
        flips.append(flipped)
    assert 0 < sum(flips) < 20


def test_segmentation_metrics_agree_with_keras_mean_iou():
    tf.keras.utils.set_random_seed(0)
    dataset = scenes()
    model = zoo.GroupNetFCN(**SCENES, num_bases=1)
    randomize_batch_norm(model)
    result = zoo.get_model_spec("GroupNetFCN").kind.evaluate(model, dataset, batch_size=16)
    keras_miou = tf.keras.metrics.MeanIoU(11, sparse_y_pred=False, ignore_class=255)
    data, _ = dataset.test()
    for image, mask in data.map(lambda d: (d["image"], d["mask"])).batch(16):
        keras_miou.update_state(tf.cast(mask, tf.int32), model(tf.cast(image, tf.float32)))
    assert result["examples"] == 48 and set(result["class_iou"]) == set(dataset.class_names)
    assert result["miou"] == pytest.approx(float(keras_miou.result()), abs=1e-6)
    assert 0 < result["miou"] < 1 and 0 < result["pixel_accuracy"] < 1


def test_cli_trains_publishes_and_reloads_a_segmentation_model_on_scenes(tmp_path, capsys, monkeypatch):
    from zoo.cli import main
    from zoo.weights import entries

    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(tmp_path / "index.json"))

    out = tmp_path / "fcn"
    argv = ["TrainGroupNetFCN", "model.num_bases=1", "epochs=1", "steps_per_epoch=3", "validation_steps=1",
            "batch_size=8", "dataset.num_train=64", "dataset.num_test=24", "progress_bar=False",
            "aux_weight=0.2", "head_lr_multiplier=10", f"output_dir={out}"]
    assert main(argv) == 0
    # Trained with the auxiliary head, which the run's files leave out.
    assert "auxiliary" in (out / "history.csv").read_text().splitlines()[0].split(",")
    saved = tf.keras.models.load_model(out / "model.h5", compile=False)
    assert not [layer.name for layer in saved.layers if layer.name.startswith("aux")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "GroupNetFCN" and metrics["dataset"] == "FashionMNISTScenes"
    assert metrics["input_shape"] == [96, 96, 1] and metrics["num_classes"] == 11
    assert metrics["test_examples"] == 24 and 0 < metrics["miou"] <= 1
    assert metrics["options"]["backbone"] == "GroupNetResNet20" and metrics["options"]["output_stride"] == 4
    assert metrics["bops"] == zoo.complexity(zoo.GroupNetFCN(**SCENES, num_bases=1)).bops
    # The run reloads from its folder; scene i depends only on the seed, the split and i,
    # so the first 24 of the default 2,000 test scenes are the run's 24.
    from zoo.training.evaluation import load_run_or_model

    model, data, kind = load_run_or_model(str(out), None, None)
    result = kind.evaluate(model, data, 256, limit=24)
    assert result["miou"] == pytest.approx(metrics["miou"], abs=1e-9)
    assert kind.text(result).startswith(f"mIoU {metrics['miou']:.2%}")

    # Published, it is re-evaluated on the run's test split and loads through its constructor.
    assert metrics["dataset_options"]["num_test"] == 24
    assert main(["weights", "publish", str(out), "--tag", "scenes_test"]) == 0
    top, notop = entries()
    assert (top.model, top.tag, top.include_top, notop.include_top) == ("GroupNetFCN", "scenes_test", True, False)
    assert top.scores["miou"] == pytest.approx(metrics["miou"], abs=1e-3) and top.kind == "segmentation"
    assert top.test_examples == 24 and "top1" not in top.scores
    assert top.options["backbone_options"] == {"stem_strides": 2}
    x = images((96, 96, 1))
    expected = tf.keras.models.load_model(str(out / "model.h5"))(x, training=False)
    np.testing.assert_allclose(zoo.GroupNetFCN(weights="scenes_test")(x, training=False), expected, atol=1e-6)
    features = zoo.GroupNetFCN(weights="scenes_test", include_top=False)
    assert features.output_shape == (None, 24, 24, 64)
    capsys.readouterr()
    assert main(["weights", "list"]) == 0
    assert f"mIoU {100 * top.scores['miou']:.2f}" in capsys.readouterr().out


def test_fcn16s_adds_the_previous_stages_scores_which_start_at_zero():
    """FCN-16s (Long et al.): the previous stage's 1x1 class scores, zero at the start, are
    added to the head's logits, resized to their resolution. Without a dilated backbone
    that stage has twice the head's resolution (ResNet-18: stride 16 and 32)."""
    options = {**SCENES, "output_stride": None}
    fcn, fcn16s = zoo.GroupNetFCN(**options), zoo.GroupNetFCN16s(**options)
    for layer in fcn.layers:  # the FCN-32s weights in both
        if layer.weights:
            fcn16s.get_layer(layer.name).set_weights(layer.get_weights())
    x = images(SCENES["input_shape"])
    outputs = [fcn16s.get_layer(name).output for name in ("logits", "skip_resize", "skip_add")]
    logits, resized, added = tf.keras.Model(fcn16s.input, outputs).predict(x, verbose=0)
    expected = tf.keras.Model(fcn.input, fcn.get_layer("logits").output).predict(x, verbose=0)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    np.testing.assert_array_equal(added, resized)  # the skip's scores start at zero
    assert resized.shape[1] == 2 * logits.shape[1]
    skip = fcn16s.get_layer("skip_logits")
    skip.set_weights([np.random.default_rng(1).normal(0, 1, w.shape) for w in skip.weights])
    _, resized, added = tf.keras.Model(fcn16s.input, outputs).predict(x, verbose=0)
    assert np.abs(added - resized).max() > 1e-3
    assert zoo.complexity(fcn16s).flops > zoo.complexity(fcn).flops


# -- the official segmentation training: the head's own learning rate, the auxiliary loss --
def one_step(optimizer, variables, seed=0):
    """The change of each variable after one step with fixed gradients, and the gradients."""
    rng = np.random.default_rng(seed)
    grads = [tf.constant(rng.normal(size=v.shape), v.dtype) for v in variables]
    before = [v.numpy() for v in variables]
    optimizer.apply_gradients(zip(grads, variables))
    return [v.numpy() - b for v, b in zip(variables, before)], [g.numpy() for g in grads], before


@pytest.mark.parametrize("name, decay", [("sgd", 0.0), ("sgd", 0.1), ("adam", 0.0), ("adam", 0.1)])
def test_a_variables_rate_and_weight_decay_are_its_multiplier_times_the_schedules(name, decay):
    """PyTorch's parameter groups: w <- w - f lr (g + ...) with decoupled decay f lr wd w."""
    from zoo.training.optimizers import Optimizer

    a, b = tf.Variable([1.0, -2.0, 0.5]), tf.Variable([3.0, 0.5, -1.0])
    optimizer = Optimizer()
    configure(optimizer, {"name": name, "learning_rate": 0.01, "schedule": "linear", "weight_decay": decay,
                           "momentum": 0.0})
    built = optimizer.build(10, 1, [(a, 1.0), (b, 10.0)])
    (da, db), grads, before = one_step(built, [a, b])
    for delta, g, w, f in zip((da, db), grads, before, (1.0, 10.0)):
        step = g if name == "sgd" else g / (np.abs(g) + 1e-7 / np.sqrt(1 - 0.999))  # Adam's first step
        np.testing.assert_allclose(delta, -f * 0.01 * (decay * w + step), rtol=1e-4, atol=1e-7)
    assert float(built.learning_rate) == pytest.approx(0.01)  # the rate of the step, reported unscaled


def test_the_head_learns_at_head_lr_multiplier_times_the_backbones_rate():
    """The head, FCN-16s' skip and the auxiliary head at 10x; every backbone weight at 1x."""
    from zoo.training.recipes import TrainGroupNetFCN16s

    task = TrainGroupNetFCN16s()
    configure(task, {"model.num_bases": 1, "head_lr_multiplier": 10, "aux_weight": 0.2,
                      "optimizer.name": "sgd", "optimizer.momentum": 0.0, "optimizer.schedule": "constant"})
    trained = task.training_model(task.model, "model")
    factors = {v.name: f for v, f in task.rate_multipliers(trained, "model")}
    assert len(factors) == len(trained.trainable_variables) > len(task.model.trainable_variables)
    for name, f in factors.items():
        layer = name.split("/")[0]
        assert f == (1.0 if layer.startswith(("stem", "stage")) else 10.0), name
    assert {n.split("/")[0] for n, f in factors.items() if f == 10} >= {"head_conv", "logits", "skip_logits",
                                                                       "aux_conv", "aux_logits"}
    variables = trained.trainable_variables
    deltas, grads, _ = one_step(task.optimizer.build(1, 1, task.rate_multipliers(trained, "model")), variables)
    for v, delta, g in zip(variables, deltas, grads):
        np.testing.assert_allclose(delta, -1e-3 * factors[v.name] * g, rtol=1e-4, atol=1e-6)  # w + d - w


def test_head_lr_multiplier_is_the_official_10_on_voc_and_1_on_the_scenes():
    from zoo.training.recipes import TrainGroupNetDeepLab

    scenes_task, voc_task = TrainGroupNetDeepLab(), TrainGroupNetDeepLab()
    configure(scenes_task, {})
    configure(voc_task, {"dataset": "VocSegmentation"})
    assert (scenes_task.head_lr_multiplier, voc_task.head_lr_multiplier) == (1.0, 10.0)
    assert scenes_task.aux_weight == voc_task.aux_weight == 0.0  # the official --aux is off


def test_the_auxiliary_loss_adds_its_weighted_cross_entropy_on_the_stage_before_the_last():
    from zoo.training.extra_loss import AuxiliaryLoss

    tf.keras.utils.set_random_seed(0)
    factory = zoo.get_model_spec("GroupNetFCN").factory(**SCENES, num_bases=1)
    model = factory.build()
    randomize_batch_norm(model)
    auxiliary = factory.auxiliary_head(model)
    reads = auxiliary.get_layer("aux_conv").input
    assert reads.shape[1:] == factory.stage_output(model, -2).shape[1:] == (24, 24, 32)
    wrapper = AuxiliaryLoss(model, auxiliary, 0.3)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(ignore_class=255)
    wrapper.compile(optimizer="sgd", loss=loss)
    x = images(SCENES["input_shape"], n=4)
    y = np.random.default_rng(1).integers(0, 11, (4, 96, 96))
    y[:, :8] = 255  # ignored pixels
    main, aux = float(loss(y, model(x, training=False))), float(loss(y, auxiliary(x, training=False)))
    logs = wrapper.test_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(main + 0.3 * aux, rel=1e-5)
    assert logs["auxiliary"] == pytest.approx(aux, rel=1e-5) and aux != pytest.approx(main, rel=1e-2)
    np.testing.assert_array_equal(wrapper(x), model(x))  # calling it calls the model
