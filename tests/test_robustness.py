"""The robustness track: corrupted test splits alike for every model, severity 0 the
clean score, the relative robustness' formula, and `zoo robustness`' errors."""
import json

import numpy as np
import pytest

from zoo import corruptions
from zoo.cli import main
from zoo.training import robustness
from zoo.training.evaluation import make_dataset


def images(dataset, n=None):
    data, _ = dataset.test()
    return np.stack([e["image"].numpy() for e in (data.take(n) if n else data)])


def test_a_corrupted_split_is_the_same_for_every_pipeline_and_limit_and_changes_the_images():
    fashion = make_dataset("FashionMNIST")
    clean = images(fashion, 40)
    first = images(robustness.Corrupted(fashion, "shot_noise", 3, seed=0, limit=40))
    np.testing.assert_array_equal(images(robustness.Corrupted(fashion, "shot_noise", 3, seed=0, limit=40)), first)
    # Image k's corruption depends on k, not on how many images are taken.
    np.testing.assert_array_equal(images(robustness.Corrupted(fashion, "shot_noise", 3, seed=0, limit=10)), first[:10])
    for k in (0, 7):
        expected = corruptions.corrupt(clean[k], "shot_noise", 3, (0, corruptions.COMMON.index("shot_noise"), 3, k))
        np.testing.assert_array_equal(first[k], expected)
    assert (first != clean).mean() > 0.2
    assert not np.array_equal(images(robustness.Corrupted(fashion, "shot_noise", 3, seed=1, limit=40)), first)
    np.testing.assert_array_equal(images(robustness.Corrupted(fashion, "fog", 0, limit=40)), clean)


def test_severity_0_scores_the_clean_split_exactly_and_the_mean_leaves_it_out():
    model, kind, dataset = robustness.published("BiRealNet20", "fashion_mnist")
    (result,) = robustness.measure([model], kind, dataset, ("fog", "pixelate"), (0, 5), limit=300)
    assert result.scores["fog"][0] == result.scores["pixelate"][0] == result.clean
    assert result.scores["fog"][1] < result.clean
    assert result.mean == pytest.approx((result.scores["fog"][1] + result.scores["pixelate"][1]) / 2)


def test_relative_robustness_is_the_model_s_drop_over_the_twin_s():
    binary = robustness.Robustness("top-1", 0.9, (1, 2), {"a": (0.8, 0.6), "b": (0.7, 0.5)})
    twin = robustness.Robustness("top-1", 0.95, (1, 2), {"a": (0.9, 0.8), "b": (0.85, 0.75)})
    assert binary.mean == pytest.approx(0.65) and twin.mean == pytest.approx(0.825)
    assert binary.relative_to(twin) == pytest.approx(0.25 / 0.125)
    assert np.isnan(binary.relative_to(robustness.Robustness("top-1", 0.9, (1,), {"a": (0.9,)})))


def test_the_command_prints_and_writes_both_models_and_the_ratio(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["robustness", "BiRealNet20", "--weights", "fashion_mnist", "--corruptions", "contrast",
                 "--severities", "2", "--limit", "100", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "BiRealNet20:fashion_mnist" in printed and "BiRealNet20FP:fashion_mnist" in printed
    record = json.loads(out.read_text())
    assert set(record) == {"BiRealNet20:fashion_mnist", "BiRealNet20FP:fashion_mnist", "relative_robustness"}
    assert f"relative robustness {record['relative_robustness']:.3f}" in printed
    assert record["BiRealNet20:fashion_mnist"]["scores"]["contrast"][0] == record["BiRealNet20:fashion_mnist"]["mean"]


@pytest.mark.parametrize("args, says", [
    (["--corruptions", "rain"], "Unknown corruption(s) rain"),
    (["--severities", "6"], "Severity 6 is out of range"),
    (["--severities", "high"], "--severities high is not a comma-separated list"),
    (["--weights", "imagenet"], "BiRealNet20 has no published checkpoint 'imagenet'"),
    (["--twin", "GroupNetFCN:fashion_mnist_scenes_k1"], "is a segmentation model of FashionMNISTScenes"),
])
def test_a_bad_request_is_one_line(args, says, capsys):
    base = ["robustness", "BiRealNet20", "--weights", "fashion_mnist", "--limit", "10"]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_the_twin_is_the_registered_float_networks_checkpoint_on_the_same_dataset():
    assert robustness.twin_checkpoint("BiRealNet20", "fashion_mnist") == "BiRealNet20FP:fashion_mnist"
    # another tag of the binary model: the float network's checkpoint on its dataset
    assert robustness.twin_checkpoint("GroupNetResNet20", "fashion_mnist_k1") == "BiRealNet20FP:fashion_mnist"
    assert robustness.twin_checkpoint("GroupNetFCN", "fashion_mnist_scenes_k1") == "GroupNetFCNFP:fashion_mnist_scenes"
    assert robustness.twin_checkpoint("BiRealNet20FP", "fashion_mnist") is None  # a float network has none
    assert robustness.twin_checkpoint("BiRealNet20", "no_such_tag") is None
