"""A user's mistake is one line naming the problem and the file (exit status 2, no
traceback), and a tag never silently overrides an argument the caller set (issue 18)."""
import re

import pytest
import tensorflow as tf

import zoo
from zoo import registry
from zoo.cli import main
from zoo.io import ZooError, save_model


def run_cli(argv, capsys):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return code, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Weights files a careless user might pass: not HDF5, truncated, another model's,
    another input shape's."""
    folder = tmp_path_factory.mktemp("files")
    save_model(zoo.BiRealNet20(input_shape=(28, 28, 1)), folder / "birealnet20.h5", weights_only=True)
    data = (folder / "birealnet20.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 3])
    (folder / "notes.h5").write_text("not weights\n")
    save_model(zoo.IRNetResNet20(input_shape=(28, 28, 1)), folder / "irnet.h5", weights_only=True)
    save_model(zoo.BiRealNet20(input_shape=(32, 32, 3)), folder / "rgb.h5", weights_only=True)
    return folder


@pytest.mark.parametrize("name, message", [
    ("notes.h5", r"notes.h5 is not an HDF5 weights file"),
    ("truncated.h5", r"truncated.h5 is truncated \([\d,]+ of [\d,]+ bytes\)"),
    ("irnet.h5", r"irnet.h5 holds another model's weights: its layer 'stage1_block1_conv1_conv'"),
    ("rgb.h5", r"rgb.h5 holds another model's weights: its layer 'stem_conv' has weights of shapes "
               r"\[\(3, 3, 3, 16\)\] where birealnet20's layer 'stem_conv' has \[\(3, 3, 1, 16\)\]"),
])
def test_a_weights_file_that_does_not_fit_is_named_with_the_first_layer_that_differs(name, message, files, capsys):
    code, err = run_cli(["summary", "BiRealNet20", "--input-shape", "28,28,1", "--totals",
                         "--weights", str(files / name)], capsys)
    assert code == 2
    assert re.search(message, err), err
    assert main(["summary", "BiRealNet20", "--input-shape", "28,28,1", "--totals",
                 "--weights", str(files / "birealnet20.h5")]) == 0


@pytest.mark.parametrize("out, message", [
    ("{tmp}", "is a folder; name the file to write in it"),
    ("{tmp}/afile/model.tflite", "afile is a file, not a folder"),
    ("/proc/zoo-model.tflite", "/proc is not writable"),
])
def test_export_checks_where_it_writes_before_converting(out, message, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("")
    from zoo import deployment

    monkeypatch.setattr(deployment, "_write_lce", lambda *a: pytest.fail("converted before checking --out"))
    code, err = run_cli(["export", "BiRealNet20", "--input-shape", "28,28,1", "--images", "2",
                         "--out", out.format(tmp=tmp_path)], capsys)
    assert code == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_write_that_fails_midway_leaves_no_temporary_file(tmp_path, monkeypatch):
    from zoo import io

    def full_disk(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.tempfile._TemporaryFileWrapper, "write", full_disk, raising=False)
    with pytest.raises(OSError, match="No space left"):
        io.atomic_write_bytes(tmp_path / "model.tflite", b"flatbuffer")
    monkeypatch.setattr(tf.keras.Model, "save_weights", lambda self, path: full_disk(open(path, "wb"), b""))
    with pytest.raises(OSError, match="No space left"):
        io.save_model(zoo.registry.get("ToyNet").build(), tmp_path / "model.weights.h5", weights_only=True)
    assert list(tmp_path.iterdir()) == []


def test_an_input_tensor_and_another_input_shape_are_refused():
    with pytest.raises(ZooError, match=r"input_tensor has shape \(28, 28, 1\) but input_shape is \(32, 32, 3\)"):
        zoo.BiRealNet20(input_tensor=tf.keras.Input((28, 28, 1)), input_shape=(32, 32, 3))
    model = zoo.BiRealNet20(input_tensor=tf.keras.Input((28, 28, 1)), input_shape=(28, 28, 1))
    assert model.input_shape == (None, 28, 28, 1)


# -- case 7: a tag fills in the arguments left at their defaults, and contradicts none ----
@pytest.mark.parametrize("constructor, kwargs, message", [
    ("GroupNetResNet20", dict(weights="fashion_mnist_k1", num_bases=3),
     r'weights="fashion_mnist_k1" were trained with num_bases=1, but you passed num_bases=3'),
    ("GroupNetResNet20", dict(weights="fashion_mnist_k1", num_bases=5),  # the default, passed explicitly
     r"trained with num_bases=1, but you passed num_bases=5"),
    ("IRNetResNet20", dict(weights="fashion_mnist", binary_activations=False),
     r"trained with binary_activations=True, but you passed binary_activations=False"),
])
def test_an_explicit_argument_that_contradicts_the_tag_is_an_error(constructor, kwargs, message):
    with pytest.raises(ZooError, match=message):
        getattr(zoo, constructor)(**kwargs)


def test_a_tag_fills_in_the_arguments_left_at_their_defaults():
    def bases(model):
        return model.get_layer("stage1_block1_conv1_conv").kernel.shape[-1]

    default = zoo.GroupNetResNet20(weights="fashion_mnist_k1")
    agreeing = zoo.GroupNetResNet20(weights="fashion_mnist_k1", num_bases=1)
    assert default.count_params() == agreeing.count_params() < zoo.GroupNetResNet20().count_params()
    assert bases(default) == bases(agreeing)


def test_a_dense_model_takes_a_backbone_checkpoint_under_its_stage1_quantizers():
    """The one exception: stage 1 of the dense recipe (clip, float weights) starts from a
    classifier trained with Group-Net's quantizers; only its weights are copied."""
    factory = registry.get("GroupNetFCN").factory
    twin = factory(backbone="GroupNetResNet20", backbone_options={"stem_strides": 2}, num_bases=1, output_stride=4,
                   backbone_weights="fashion_mnist_k1", input_quantizer="clip", kernel_quantizer=None,
                   input_shape=(96, 96, 1)).build()
    classifier = zoo.GroupNetResNet20(weights="fashion_mnist_k1")
    layer = "stage1_block1_conv1_conv"
    assert (twin.get_layer(layer).get_weights()[0] == classifier.get_layer(layer).get_weights()[0]).all()


def test_an_error_raised_in_a_traced_function_names_its_innermost_error():
    """TensorFlow re-raises an error of a traced function as "in user code:" and a
    traceback; the one line is the innermost error (it once printed only "in user code:")."""
    from zoo.cli import explain

    @tf.function
    def step(x):
        raise ValueError(f"the real problem, shape {x.shape}")

    with pytest.raises(ValueError) as raised:
        step(tf.zeros((2, 3)))
    assert str(raised.value).startswith("in user code:")
    line = explain(raised.value)
    assert line.startswith("ValueError: the real problem, shape (2, 3)") and "\n" not in line
