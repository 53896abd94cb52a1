"""The robustness track: a model's score on its test split under image corruptions.

As BiBench's corruption track (Qin et al., ICML 2023) does with CIFAR-10-C, for every
published checkpoint: the test images corrupted by each corruption of `zoo.corruptions`
(ImageNet-C's, with CIFAR-10-C's strengths) at severities 1 to 5, scored as the model's
kind scores (top-1, mIoU, mAP); the mean corruption score (over corruptions and
severities); and the relative robustness against a full-precision twin:

    relative robustness = (clean - mean corrupted) of the model / the same of the twin

below 1, the model loses less to corruptions than its float twin does. Image k of the
split gets the same corruption in every model and process: its seed is
`(seed, corruption, severity, k)`. Only the images change (masks and boxes do not).

    zoo robustness BiRealNet20 --weights fashion_mnist        (twin: its registered one)
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from zoo import corruptions, registry
from zoo.io import ZooError
from zoo.training.evaluation import make_dataset


class Corrupted:
    """A dataset whose test split (its first `limit` images, or all) is corrupted:
    `name` at `severity`, image k with seed `(seed, corruption's index, severity, k)`.
    Everything else is the dataset's own; the corrupted images are kept in memory after
    the first pass, so several models see them for one computation."""

    def __init__(self, dataset, name: str, severity: int, seed: int = 0, limit: Optional[int] = None):
        self.dataset, self.name, self.severity = dataset, name, severity
        data, count = dataset.test(decoders=getattr(dataset, "decoders", None))
        if limit is not None:
            data, count = data.take(limit), min(count, limit)
        number = list(corruptions.CORRUPTIONS).index(name)

        def corrupt(image: np.ndarray, index: np.int64) -> np.ndarray:
            return corruptions.corrupt(image, name, severity, (seed, number, severity, int(index)))

        def example(index, element):
            image = element["image"]
            if image.dtype == tf.string:  # kept encoded by the dataset's decoders (ImageNet)
                image = tf.io.decode_image(image, channels=3, expand_animations=False)
            out = tf.numpy_function(corrupt, [image, index], tf.uint8, stateful=False)
            return {**element, "image": tf.ensure_shape(out, image.shape)}

        self.split = data.enumerate().map(example, tf.data.AUTOTUNE).cache(), count

    def __getattr__(self, attr):
        return getattr(self.dataset, attr)

    def test(self, decoders=None):
        return self.split


@dataclass
class Robustness:
    """A model's scores: clean, and per corruption a score per severity (fractions)."""

    metric: str
    clean: float
    severities: Tuple[int, ...]
    scores: Dict[str, Tuple[float, ...]] = field(default_factory=dict)
    examples: int = 0

    @property
    def mean(self) -> float:
        """The mean corruption score: over every corruption and severity (0, none, left out)."""
        return float(np.mean([s for row in self.scores.values() for s, n in zip(row, self.severities) if n]))

    def relative_to(self, twin: "Robustness") -> float:
        """BiBench's relative robustness: this model's drop over the twin's (below 1: more robust)."""
        drop = twin.clean - twin.mean
        if drop <= 0:
            return float("nan")
        return (self.clean - self.mean) / drop

    @classmethod
    def from_json(cls, record: dict) -> "Robustness":
        """The inverse of `as_json` (its `mean` is derived, not read)."""
        return cls(record["metric"], record["clean"], tuple(record["severities"]),
                   {k: tuple(v) for k, v in record["scores"].items()}, record["examples"])

    def as_json(self) -> dict:
        return {"metric": self.metric, "clean": self.clean, "mean": self.mean, "examples": self.examples,
                "severities": list(self.severities), "scores": {k: list(v) for k, v in self.scores.items()}}


def measure(models: Sequence[tf.keras.Model], kind, dataset, names: Sequence[str] = corruptions.COMMON,
            severities: Sequence[int] = corruptions.SEVERITIES, seed: int = 0, limit: Optional[int] = None,
            batch_size: int = 256, progress=None) -> list:
    """The `Robustness` of each model of `models` (same kind and dataset): each corrupted
    split is computed once and scored by every model. `progress(name, severity)` is
    called before each."""
    key = kind.headline.key
    clean = [kind.evaluate(model, dataset, batch_size, limit) for model in models]
    results = [Robustness(kind.headline.name, c[key], tuple(severities), examples=c["examples"]) for c in clean]
    for name in names:
        rows = [[] for _ in models]
        for severity in severities:
            if progress:
                progress(name, severity)
            data = Corrupted(dataset, name, severity, seed, limit)
            for row, model in zip(rows, models):
                row.append(kind.evaluate(model, data, batch_size, limit)[key])
        for result, row in zip(results, rows):
            result.scores[name] = tuple(row)
    return results


def published(model: str, tag: str):
    """(the model built with its published checkpoint `tag`, its kind, its dataset).

    Raises:
        ZooError: an unknown model, or a tag it has not published.
    """
    from zoo import weights as weights_index

    spec = registry.get(model)
    entries = [e for e in weights_index.entries() if e.model == spec.name and e.tag == tag and e.include_top]
    if not entries:
        raise ZooError(f"{spec.name} has no published checkpoint {tag!r} with its top; published: "
                       f"{', '.join(spec.weights) or 'none'} (`zoo weights list`).")
    return spec.constructor(weights=tag), spec.kind, make_dataset(entries[0].dataset)


def twin_checkpoint(model: str, tag: str) -> Optional[str]:
    """"TWIN:TAG", the published checkpoint of `model`'s registered full-precision twin
    (`Variant.twin`) on the dataset of `model`'s checkpoint `tag` (the same tag first),
    or None (no twin registered, or none published on that dataset)."""
    from zoo import weights as weights_index

    twin = registry.get(model).twin
    entries = [e for e in weights_index.entries() if e.include_top]
    dataset = next((e.dataset for e in entries if e.model == model and e.tag == tag), None)
    tags = sorted((e.tag != tag, e.tag) for e in entries if e.model == twin and e.dataset == dataset)
    return f"{twin}:{tags[0][1]}" if tags else None


def check(names: Sequence[str], severities: Sequence[int]) -> None:
    """Raises a ZooError naming an unknown corruption or a severity outside 0-5."""
    unknown = [n for n in names if n not in corruptions.CORRUPTIONS]
    if unknown:
        raise ZooError(f"Unknown corruption(s) {', '.join(unknown)}; the corruptions are: "
                       f"{', '.join(corruptions.CORRUPTIONS)}.")
    bad = [s for s in severities if not 0 <= s <= 5]
    if bad:
        raise ZooError(f"Severity {bad[0]} is out of range: severities go from 0 (none) to 5.")
