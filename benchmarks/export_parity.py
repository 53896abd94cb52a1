"""Export parity: every published checkpoint exported, run on its whole test split.

For each checkpoint of the weights index (with its top), `zoo.export` writes it in
each format (`--formats`, default OpenVINO and LCE), and `zoo.deploy` runs the file on
every test image of its dataset (the 10,000 Fashion-MNIST test images; 2,000 scenes
for the dense models, a detector's raw predictions), beside Keras on the same images:

- the binary convolutions converted (`BinaryConvolution` / `LceBconv2d` of the
  model's) and the layers that fell back to float;
- top-1 agreement: the share of images (pixels; a detector's locations) whose top
  class, over the class outputs, is the same in the file and in Keras;
- the largest absolute difference of the outputs;
- a classifier's top-1 accuracy from the file's outputs against the index's.

    .venv/bin/python benchmarks/export_parity.py
    .venv/bin/python benchmarks/export_parity.py --models BiRealNet20 --limit 1000 --formats openvino

With --models, the rows of the other checkpoints are kept from the last run if it had
the same limit and formats and they still describe the published files (each row
records its checkpoint's sha256).

Prints one table and writes benchmarks/results/export_parity.json.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf  # noqa: E402
from common import kept_rows, read_result, table, write_result

FORMATS = {"openvino": ".xml", "lce": ".tflite"}


def test_split(dataset: str, limit):
    """(images as the models take them, labels) of a dataset's test split."""
    from zoo.training.evaluation import make_dataset

    data, _ = make_dataset(dataset).test()
    if limit:
        data = data.take(limit)
    data = data.map(lambda e: (tf.cast(e["image"], tf.float32), e.get("label", tf.constant(-1, tf.int64))))
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in data.batch(1000)))
    return np.concatenate(images), np.concatenate(labels)


def checkpoint_rows(args) -> list:
    import zoo
    from zoo import registry, weights

    rows = []
    for entry in weights.entries():
        if not entry.include_top or (args.models and entry.model not in args.models):
            continue
        spec = registry.get(entry.model)
        model = spec.constructor(weights=entry.tag, **spec.kind.export_arguments)
        images, labels = test_split(entry.dataset, args.limit)
        keras = tf.nest.flatten(model.predict(images, batch_size=64, verbose=0))[0]
        classes = entry.num_classes
        for format, suffix in FORMATS.items():
            if format not in args.formats:
                continue
            with tempfile.TemporaryDirectory() as folder:
                report = zoo.export(model, Path(folder) / f"model{suffix}", images[:32], format, args.threads)
                outputs = tf.nest.flatten(zoo.deploy(report.path, args.threads)(images))[0]
            top = outputs[..., :classes].argmax(-1)
            row = {
                "model": entry.model, "tag": entry.tag, "sha256": entry.sha256, "format": format,
                "precision": report.precision,
                "images": len(images), "binary_ops": report.ops[report.binary_op], "binary_op": report.binary_op,
                "binary_convolutions": report.binary_convolutions, "fallbacks": list(report.fallbacks),
                "top1_agreement": float((top == keras[..., :classes].argmax(-1)).mean()),
                "max_abs_diff": float(np.abs(outputs - keras).max()),
            }
            if spec.kind.one_hot:  # class labels: accuracy too
                row.update(accuracy=float((top == labels).mean()), index_accuracy=entry.scores["top1"],
                           keras_accuracy=float((keras.argmax(-1) == labels).mean()))
            rows.append(row)
            print(f"{entry.model} {entry.tag} {format}: agreement {row['top1_agreement']:.4%}, "
                  f"max diff {row['max_abs_diff']:.3g}", flush=True)
        zoo.fused.clear_session()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[])
    parser.add_argument("--formats", nargs="*", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--limit", type=int, default=None, help="only the first N test images")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    start = time.time()
    result = {"what": "every published checkpoint, exported and run on its test split", "limit": args.limit,
              "formats": sorted(args.formats), "rows": checkpoint_rows(args)}
    result["seconds"] = time.time() - start
    if args.models:  # the other checkpoints' rows from the last run, where still current
        order = list(FORMATS)
        kept = kept_rows(read_result("export_parity", missing_ok=True), result, ("limit", "formats"))
        result["rows"] = sorted([*kept, *result["rows"]],
                                key=lambda r: (r["model"], r["tag"], order.index(r["format"])))
    path = write_result("export_parity", result)
    print(render(result))
    print(f"written to {path}")
    return 0


def render(result: dict) -> str:
    """One row per checkpoint and format."""
    rows = []
    for r in result["rows"]:
        accuracy = (f"{r['accuracy']:.2%} / {r['keras_accuracy']:.2%} / {r['index_accuracy']:.2%}"
                    if "accuracy" in r else "-")
        runtime = "OpenVINO" + (f" {r['precision']}" if r["precision"] else "") if r["format"] == "openvino" else "LCE"
        rows.append([r["model"], r["tag"], runtime, f"{r['binary_ops']} {r['binary_op']} of {r['binary_convolutions']}",
                     ", ".join(r["fallbacks"]) or "none", f"{r['images']:,}", f"{r['top1_agreement']:.2%}",
                     f"{r['max_abs_diff']:.2g}", accuracy])
    return "\n".join([
        "Top-1 agreement with Keras over the class outputs (per image; per pixel for segmentation, per "
        "location for the detector's raw predictions); top-1 of a classifier from the file / from Keras / "
        "in the index.",
        "",
        table(["model", "tag", "runtime", "binary convolutions", "fell back", "images", "top-1 agreement",
               "max abs diff", "top-1 file / Keras / index"], rows),
    ])


if __name__ == "__main__":
    sys.exit(main())
