"""PASCAL VOC 2012 segmentation: the tfds builder on a VOCdevkit folder made here (same
layout and file formats as the real one), the crops and masks, a training task on
`tfds.testing.mock_data`, and the error for missing data."""
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from zookeeper import configure

from zoo.training.datasets import VOC_CLASSES, DatasetNotFoundError, VocSegmentation

SIZES = {"2007_000032": (281, 500), "2007_000033": (366, 500), "2007_000039": (375, 500),
         "2007_000042": (335, 500), "2007_000061": (500, 333)}
SPLITS = {"train": ["2007_000032", "2007_000039", "2007_000061"], "val": ["2007_000033", "2007_000042"]}


def class_mask(name):
    """A mask with background, two classes and a 255 boundary, like VOC's."""
    h, w = SIZES[name]
    mask = np.zeros((h, w), np.uint8)
    k = 1 + sum(map(ord, name)) % 20
    mask[h // 4: h // 2, w // 4: w // 2] = k
    mask[h // 4 - 2: h // 4, w // 4: w // 2] = 255
    mask[h // 2:, w // 2:] = 15  # person
    return mask


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    root = tmp_path_factory.mktemp("manual") / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (h, w) in SIZES.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        png = Image.fromarray(class_mask(name), mode="P")
        png.putpalette(list(rng.integers(0, 256, 768, np.uint8)))  # VOC's masks are palette PNGs
        png.save(root / "SegmentationClass" / f"{name}.png")
    for split, names in SPLITS.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root.parents[1]


def voc(tmp_path, manual_dir, **fields):
    dataset = VocSegmentation()
    configure(dataset, {"data_dir": str(tmp_path / "tfds"), "manual_dir": str(manual_dir), **fields})
    return dataset


def test_builder_prepares_images_and_class_masks_from_a_devkit_folder(devkit, tmp_path):
    dataset = voc(tmp_path, devkit)
    data, count = dataset.train()
    examples = list(data)
    assert count == dataset.num_examples("train") == 3 and dataset.num_examples("validation") == 2
    assert sorted(e["image/filename"].numpy().decode() for e in examples) == SPLITS["train"]
    for e in examples:
        name = e["image/filename"].numpy().decode()
        assert e["image"].shape == (*SIZES[name], 3)
        np.testing.assert_array_equal(e["mask"].numpy()[..., 0], class_mask(name))
    assert dataset.num_classes == 21 and dataset.class_names[15] == "person" == VOC_CLASSES[15]


def test_evaluation_pairs_are_the_whole_image_padded_with_the_ignore_label(devkit, tmp_path):
    dataset = voc(tmp_path, devkit)
    element = next(iter(dataset.validation()[0]))
    name = element["image/filename"].numpy().decode()
    image, mask = (t.numpy() for t in dataset.segmentation_pair(element, training=False))
    h, w = SIZES[name]
    top, left = (512 - h) // 2, (512 - w) // 2
    assert image.shape == (512, 512, 3) and mask.shape == (512, 512)
    np.testing.assert_array_equal(mask[top:top + h, left:left + w], class_mask(name))
    assert (mask == 255).sum() == 512 * 512 - h * w + (class_mask(name) == 255).sum()
    np.testing.assert_allclose(image[top:top + h, left:left + w], element["image"].numpy(), atol=1e-4)
    np.testing.assert_allclose(image[0, 0], [0.485 * 255, 0.456 * 255, 0.406 * 255], atol=1e-4)


def test_training_pairs_are_random_crops_with_the_masks_labels(devkit, tmp_path):
    dataset = voc(tmp_path, devkit, image_size=96)
    element = next(iter(dataset.train()[0]))
    name = element["image/filename"].numpy().decode()
    tf.random.set_seed(0)
    seen = set()
    for _ in range(8):
        image, mask = dataset.segmentation_pair(element, training=True)
        assert image.shape == (96, 96, 3) and mask.shape == (96, 96)
        values = set(np.unique(mask.numpy()))
        assert values <= set(np.unique(class_mask(name))) | {255}
        seen |= values
    assert len(seen) >= 3  # different crops and scales see different classes


def test_missing_voc_names_the_tar_to_download(tmp_path):
    dataset = voc(tmp_path, tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises((DatasetNotFoundError, FileNotFoundError), match="VOCtrainval_11-May-2012.tar"):
        dataset.train()


def test_segmentation_task_on_mock_voc_data(tmp_path, monkeypatch):
    from zoo.cli import main

    def as_dataset(self, *args, **kwargs):  # image and mask of one size, as VOC's are
        rng = np.random.default_rng(0)
        examples = [{"image": rng.integers(0, 256, (h, w, 3), np.uint8),
                     "mask": rng.choice(np.array([0, 3, 255], np.uint8), (h, w, 1)),
                     "image/filename": "mock"} for h, w in ((50, 40), (60, 70), (40, 40), (70, 50))]
        return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature={
            "image": tf.TensorSpec((None, None, 3), tf.uint8), "mask": tf.TensorSpec((None, None, 1), tf.uint8),
            "image/filename": tf.TensorSpec((), tf.string)})

    monkeypatch.setattr(VocSegmentation, "num_examples", lambda self, split: 4)
    argv = ["TrainGroupNetFCN", "dataset=VocSegmentation", "dataset.image_size=64", "model.num_bases=1",
            "epochs=1", "steps_per_epoch=2", "validation_steps=1", "batch_size=2", "progress_bar=False",
            f"output_dir={tmp_path / 'run'}"]
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        assert main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == "VocSegmentation" and metrics["num_classes"] == 21
    assert metrics["input_shape"] == [64, 64, 3] and metrics["test_examples"] == 4
    assert set(metrics["class_iou"]) == set(VOC_CLASSES)
    assert metrics["class_iou"]["background"] is not None and 0 <= metrics["miou"] <= 1
