"""PASCAL VOC 2012 semantic segmentation as a TensorFlow Datasets builder.

TensorFlow Datasets has VOC's detection annotations (`voc/2012`) but not its
segmentation masks; this builder adds them: `voc_segmentation2012`, the 1,464 "train"
and 1,449 "validation" images of `ImageSets/Segmentation`, each with its class mask
(`SegmentationClass/*.png`: 0 background, 1-20 the classes, 255 the unlabelled
boundaries).

The data cannot be downloaded by the builder: download `VOCtrainval_11-May-2012.tar`
from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and pass its folder as the manual
directory (`zoo TrainGroupNetFCN dataset=VocSegmentation dataset.manual_dir=/path`);
an already extracted `VOCdevkit/VOC2012` folder there is used as it is.
"""
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
TAR = "VOCtrainval_11-May-2012.tar"


class VocSegmentation2012(tfds.core.GeneratorBasedBuilder):
    """PASCAL VOC 2012 semantic segmentation (train 1,464, validation 1,449 images)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Images and class masks of ImageSets/Segmentation."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download {TAR} from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and place it (or "
        "its extracted VOCdevkit folder) in the manual directory."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="PASCAL VOC 2012 semantic segmentation: 20 classes and background; "
                        "mask value 255 marks unlabelled boundary pixels.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "mask": tfds.features.Image(shape=(None, None, 1)),
                "image/filename": tfds.features.Text(),
            }),
            supervised_keys=("image", "mask"),
            homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        root = voc_root(Path(dl_manager.manual_dir), dl_manager)
        return {
            "train": self._generate_examples(root, "train"),
            "validation": self._generate_examples(root, "val"),
        }

    def _generate_examples(self, root: Path, split: str):
        from PIL import Image

        ids = (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
        for name in ids:
            with Image.open(root / "SegmentationClass" / f"{name}.png") as png:
                mask = np.asarray(png)  # palette indices: the class ids
            if mask.ndim != 2:
                raise ValueError(f"{name}.png is not a palette (class index) image: shape {mask.shape}.")
            yield name, {
                "image": str(root / "JPEGImages" / f"{name}.jpg"),
                "mask": mask[..., np.newaxis].astype(np.uint8),
                "image/filename": name,
            }


def voc_root(manual_dir: Path, dl_manager=None) -> Path:
    """The VOC2012 folder in `manual_dir`: an extracted VOCdevkit, else the extracted tar.

    Raises:
        FileNotFoundError: neither is there, naming what to download.
    """
    for root in (manual_dir / "VOCdevkit" / "VOC2012", manual_dir / "VOC2012"):
        if (root / "ImageSets" / "Segmentation").is_dir():
            return root
    if (manual_dir / TAR).exists() and dl_manager is not None:
        return Path(dl_manager.extract(manual_dir / TAR)) / "VOCdevkit" / "VOC2012"
    raise FileNotFoundError(
        f"No PASCAL VOC 2012 in {manual_dir}: put {TAR} (from "
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/) or its extracted VOCdevkit folder there."
    )
