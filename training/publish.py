"""`zoo weights publish RUN_DIR`: a finished training run becomes weights index entries.

Publishing rebuilds the model with its public constructor (the checkpoint's variant,
e.g. `num_bases=1`), loads the run's weights into it, re-evaluates it on the full test
split, and writes two checkpoints, with and without the classifier, and their index
entries (sha256, size, accuracy, cost, the command and commit that trained it, the
budget). No number in the index is typed by hand.
"""
import csv
import datetime
import io
import os
import re
from pathlib import Path
from typing import List, Optional

from zoo import complexity, fused, registry, stack
from zoo import weights as weights_index
from zoo.io import ZooError, atomic_write_bytes, exclusive_lock, fault_point, load_weights, read_json, save_model
from zoo.models.base import options_from_json
from zoo.training.evaluation import make_dataset

# Re-evaluated accuracy may differ from the run's record by this much (float noise of
# a different batch size); more means the checkpoint does not reproduce the run.
REPRODUCE_TOLERANCE = 0.001

PROVENANCE = ("command", "git_commit", "epochs", "pretrain_epochs", "wall_time_seconds", "machine")
COST = ("bops", "flops", "ops", "params", "binary_params", "float_params", "memory_mbit")


def read_run(run_dir: Path) -> dict:
    """The record of a finished run (its metrics.json).

    Arguments:
        run_dir: the run's output directory.

    Returns:
        The parsed metrics.json.

    Raises:
        FileNotFoundError: metrics.json or model.weights.h5 is missing (the run has not
            finished).
        ZooError: metrics.json is damaged.
    """
    path = run_dir / "metrics.json"
    if not path.exists() or not (run_dir / "model.weights.h5").exists():
        raise FileNotFoundError(
            f"{run_dir} holds no finished run (metrics.json and model.weights.h5). If its "
            "training was interrupted, re-run the same command to resume it."
        )
    return read_json(path)


def training_curve(run_dir: Path, columns) -> str:
    """The run's per-epoch history as CSV, stage 1 ("pretrain") first, then "train".

    Arguments:
        run_dir: the run's output directory (its history.csv and pretrain/history.csv
            are read, when they exist).
        columns: the columns to keep (`Kind.history_columns()`).

    Returns:
        CSV text with `columns` (others dropped); only the header when there is no history.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for stage, path in (("pretrain", run_dir / "pretrain" / "history.csv"), ("train", run_dir / "history.csv")):
        if path.exists():
            with open(path, newline="", encoding="utf-8") as f:
                writer.writerows({**row, "stage": stage} for row in csv.DictReader(f))
    return out.getvalue()


def publish(
    run_dir: str,
    tag: Optional[str] = None,
    url_base: Optional[str] = None,
    out_dir: Optional[str] = None,
    index_file: Optional[str] = None,
    force: bool = False,
) -> List[weights_index.Entry]:
    """Adds the run's entries to the index (replaces them with `force`); returns them.

    All or nothing: the files (the two checkpoints and the training curve,
    `<Model>-<tag>.history.csv`) are written under new names that end in a prefix of
    their sha256 (`<Model>-<tag>-<sha8>.weights.h5`, as torchvision names its files),
    verified, and only then named by the index, replaced in one atomic rename. Files
    the new index no longer names are removed last. A process killed at any point
    leaves the old index with its files, or the new one with its files; the next
    publish into the folder removes a killed one's leftovers. One publish at a time
    per index (a lock next to it).

    Arguments:
        run_dir: the output directory of a finished `zoo Train...` run.
        tag: the weights tag; default the dataset's (e.g. "fashion_mnist").
        url_base: publish for download from `url_base/<file>` (upload the files from
            `out_dir` there); default: ship the files inside the package, next to the index.
        out_dir: where the files are written when `url_base` is given (required then).
        index_file: the index to update; default the one in use (`zoo.weights.index_path`).
        force: replace the model's checkpoints of the same tag; without it they are refused.

    Returns:
        The two new `zoo.weights.Entry` records, with and without the classifier.

    Raises:
        FileNotFoundError: the run has not finished.
        ZooError: `url_base` is given without an `out_dir`, the tag is not a tag or
            already published for the model (without `force`), the index is unreadable,
            another publish holds the index, or the rebuilt model does not reproduce the
            run's accuracy.
    """
    if url_base and not out_dir:
        raise ZooError("With --url-base, pass --out-dir: the folder to write the files to upload.")
    run = read_run(Path(run_dir))
    spec = registry.get(run["model"])
    dataset = make_dataset(run["dataset"], run.get("dataset_options"))  # the run's test split
    tag = weights_index.check_tag(dataset.weights_tag if tag is None else tag)
    index_path = Path(index_file) if index_file else weights_index.index_path()
    folder = Path(out_dir) if url_base else index_path.parent
    with exclusive_lock(index_path.with_name(index_path.name + ".lock"), f"the weights index {index_path}"):
        current = weights_index.entries(index_path) if index_path.exists() else ()  # read (and checked) first
        replaced = [e for e in current if (e.model, e.tag) == (spec.name, tag)]
        if replaced and not force:
            old = next((e for e in replaced if e.include_top), replaced[0])
            raise ZooError(
                f'{spec.name} weights="{tag}" are published already ({spec.kind.text(old.scores)}, {old.date}, '
                f"made by: {old.command}). Publish under another --tag, or pass --force to replace them.")
        new = make_entries(run, Path(run_dir), spec, dataset, tag, folder, url_base)
        fault_point("publish_files_written")
        updated = [*(e for e in current if e not in replaced), *new]
        weights_index.write_index(updated, index_path)
        fault_point("publish_index_written")
        remove_unnamed(folder, f"{spec.name}-{tag}", updated, replaced)
    return new


def make_entries(run: dict, run_dir: Path, spec, dataset, tag: str, folder: Path,
                 url_base: Optional[str]) -> List[weights_index.Entry]:
    """Re-evaluates the run's model, writes its files into `folder` under new names and
    returns their entries (with and without the classifier)."""
    shape, classes = tuple(run["input_shape"]), run["num_classes"]
    factory = spec.factory(input_shape=shape, num_classes=classes, **options_from_json(run.get("options", {})))
    model = factory.build()
    load_weights(model, run_dir / "model.weights.h5")
    result = spec.kind.evaluate(model, dataset, 256)
    metric = spec.kind.headline.key  # the headline a published checkpoint must reproduce
    if abs(result[metric] - run[metric]) > REPRODUCE_TOLERANCE:
        raise ZooError(
            f"{spec.name} rebuilt from {run_dir} scores {metric} {result[metric]:.4f} on the test "
            f"split, the run recorded {run[metric]:.4f}: the constructor does not build the "
            "trained architecture. Nothing was published."
        )
    features = spec.factory(include_top=False, input_shape=shape, num_classes=classes, **factory.variant()).build()
    for layer in features.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())

    cost = complexity(model).as_dict()
    curve = training_curve(run_dir, spec.kind.history_columns()).encode("utf-8")
    common = dict(
        model=spec.name, tag=tag, input_shape=shape, num_classes=classes,
        options=factory.variant(), dataset=run["dataset"], kind=spec.kind.name,
        cost={k: cost[k] for k in COST},
        date=datetime.date.today().isoformat(),
        history=stage(folder, f"{spec.name}-{tag}", ".history.csv", lambda p: atomic_write_bytes(p, curve)).name,
        **{k: run.get(k) for k in PROVENANCE},
    )
    new = []
    for keras_model, include_top in ((model, True), (features, False)):
        path = stage(folder, f"{spec.name}-{tag}{'' if include_top else '-notop'}", ".weights.h5",
                     lambda p: save_model(keras_model, p, weights_only=True))
        load_weights(keras_model, path)  # verified: the file reads back into the model
        scores = {m.key: result[m.key] for m in spec.kind.scores} if include_top else {}
        accuracy = dict(scores=scores, test_examples=result["examples"] if include_top else None,
                        evaluated_with=stack.numerics() if include_top else None)
        location = dict(url=f"{url_base.rstrip('/')}/{path.name}") if url_base else dict(file=path.name)
        new.append(weights_index.Entry(include_top=include_top, sha256=weights_index.sha256(path),
                                       size=path.stat().st_size, **location, **accuracy, **common))
    return new


STAGING = ".staging-"  # the prefix of a file being published


def stage(folder: Path, stem: str, suffix: str, write) -> Path:
    """Writes a file with `write(path)` under a staging name in `folder`, then renames it
    to `<stem>-<first 8 hex digits of its sha256><suffix>` (the same content, the same
    name: a file an index names is never overwritten by other content)."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f"{STAGING}{os.getpid()}-{stem}{suffix}"
    write(staged)
    fault_point("publish_staged")
    final = folder / f"{stem}-{weights_index.sha256(staged)[:8]}{suffix}"
    os.replace(staged, final)
    return final


def remove_unnamed(folder: Path, stem: str, index, replaced=()) -> None:
    """Removes what a replaced entry or a killed publish left in `folder`: the files of
    `stem` (a model and tag, `<stem>[-notop][-<sha8>].weights.h5` or `.history.csv`) and
    of the `replaced` entries that `index` does not name, and staging files."""
    named, old = set(file_names(index)), set(file_names(replaced))
    pattern = re.compile(re.escape(stem) + r"(-notop)?(-[0-9a-f]{8})?\.(weights\.h5|history\.csv)")
    for name in {*(p.name for p in folder.iterdir()), *old} - named:
        if name.startswith(STAGING) or pattern.fullmatch(name) or name in old:
            (folder / name).unlink(missing_ok=True)


def file_names(entries):
    """The names of the files of index entries in their folder."""
    return [name for e in entries for name in (e.file, e.history, e.url and e.url.rsplit("/", 1)[-1]) if name]


def evaluate_published(models=(), limit: Optional[int] = None) -> List[dict]:
    """Loads every published checkpoint with a classifier (or those of `models`) through
    its constructor and measures it on its dataset's test split (`limit`: the first N
    test images); one row per checkpoint.

    Arguments:
        models: model names to evaluate; default empty: every model.
        limit: evaluate on the first `limit` test images only; default None (all).

    Returns:
        A list of dicts with `model`, `tag`, `metric` ("top-1", "mIoU" for
        segmentation, "mAP" for detection), `index_value` (the index's), `value` (measured now), `examples`,
        `full` (whether the whole split behind the index's score was measured), `same` (the
        same score, to 1e-6), `index_numerics` and `numerics` (what the index's score and this
        one were measured with: `zoo.stack.numerics()`), `ops` and `memory_mbit` (the entry's cost).
    """
    rows = []
    for entry in weights_index.entries():
        if not entry.include_top or (models and entry.model not in models):
            continue
        spec = registry.get(entry.model)
        fused.clear_session()
        model = spec.constructor(weights=entry.tag)
        result = spec.kind.evaluate(model, make_dataset(entry.dataset), 256, limit)
        headline = spec.kind.headline
        rows.append(dict(
            model=entry.model, tag=entry.tag, metric=headline.name, index_value=entry.scores[headline.key],
            value=result[headline.key], full=result["examples"] == entry.test_examples,
            # one image of 10,000 is 1e-4; mAP's float sums vary in their last bits from run to run
            same=abs(result[headline.key] - entry.scores[headline.key]) < 1e-6,
            index_numerics=entry.evaluated_with, numerics=stack.numerics(),
            examples=result["examples"], ops=entry.cost.get("ops"), memory_mbit=entry.cost.get("memory_mbit"),
        ))
    return rows
