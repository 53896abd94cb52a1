"""The `zoo` command: listing, summaries, and clear errors for bad input."""
import subprocess
import sys

import pytest

import zoo
from zoo.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_model_with_paper_results(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for spec in zoo.list_models():
        assert spec.name in out
    assert "ImageNet 56.4 / 79.5" in out
    assert "PASCAL VOC 2012 mIoU 65.1" in out


def test_summary_prints_the_reference_cost(capsys):
    code, out, _ = run(capsys, "summary", "BiRealNet18", "--totals")
    assert code == 0
    assert "BOPs    1.676e+09" in out and "OPs     1.64e+08" in out


def test_summary_per_layer_for_a_small_input(capsys):
    code, out, _ = run(capsys, "summary", "BiRealNet20", "--input-shape", "28,28,1", "--num-classes", "10")
    assert code == 0
    assert "stage3_conv6_conv" in out and "input 28x28x1" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "BiRealNet99"], "Unknown model 'BiRealNet99'. Did you mean"),
        (["summary", "BiRealNet20", "--input-shape", "28,28"], "(height, width, channels)"),
        (["summary", "BiRealNet18", "--weights", "imagenet"], 'weights="imagenet" is not published'),
        (["TrainBiRealNet20", "foo=1"], "Key 'foo' does not correspond to any field"),
        # not Mnist: larq_zoo has one
        (["TrainBiRealNet20", "dataset=Svhn"], "Datasets: Cifar10, CocoDetection, FashionMNIST"),
        (["TrainBiRealNet20", "epochs=abc"], "Field 'epochs'"),
        (["evaluate", "BiRealNet20"], "Pass --dataset"),
    ],
)
def test_bad_input_gives_one_clear_line_and_status_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_missing_data_names_the_fix(capsys, tmp_path):
    code, _, err = run(capsys, "TrainBiRealNet20", f"dataset.data_dir={tmp_path}", f"output_dir={tmp_path / 'run'}")
    assert code == 2
    assert "apt-get install dataset-fashion-mnist" in err and "ZOO_DATA_DIR" in err


def test_wrong_input_channels_for_the_dataset(capsys, tmp_path):
    code, _, err = run(capsys, "TrainBiRealNet20", "model.input_shape=(32,32,3)", f"output_dir={tmp_path}")
    assert code == 2
    assert "(32, 32, 3) but FashionMNIST gives (28, 28, 1)" in err


def test_console_script_exits_2_without_traceback():
    zoo = [sys.executable, "-m", "zoo.cli"]
    result = subprocess.run([*zoo, "TrainNope"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "No such command 'TrainNope'" in result.stderr
    result = subprocess.run([*zoo, "summary", "Nope"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
