"""The robustness track for every published checkpoint (BiBench's corruption track).

Each checkpoint of the weights index (with its top), and its registered full-precision
twin's checkpoint on the same dataset where one is published, is scored on its dataset's
test split under every corruption of `zoo.corruptions` at severities 1 to 5
(`zoo.training.robustness`): each corrupted split is computed once and scored by every
model of its dataset. Prints one table (clean and mean corrupted score, relative
robustness against the twin) and writes benchmarks/results/robustness.json, which the
docs' model pages render (a table per corruption and a plot by severity).

    .venv/bin/python benchmarks/robustness.py
    .venv/bin/python benchmarks/robustness.py --models BiRealNet20 --limit 1000 --corruptions fog,contrast

With --models, the rows of the other checkpoints are kept from the last run if it had
the same seed, limit and corruptions and they still describe the published files (each
row records its checkpoint's sha256 and its twin's, and which command measured it).
"""
import argparse
import sys
from collections import defaultdict
from pathlib import Path

from common import kept_rows, published_checkpoints, read_result, table, write_result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[], help="Only these models' checkpoints.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N test images.")
    parser.add_argument("--corruptions", default=None, help="Comma-separated (default: every one).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from zoo import corruptions
    from zoo.training import robustness

    names = tuple(args.corruptions.split(",")) if args.corruptions else tuple(corruptions.CORRUPTIONS)
    robustness.check(names, corruptions.SEVERITIES)
    published = published_checkpoints()
    chosen = sorted(key for key in published if not args.models or key[0] in args.models)
    by_dataset = defaultdict(list)  # the checkpoints of a dataset, with their twins
    twins = {}
    for model, tag in chosen:
        twin = robustness.twin_checkpoint(model, tag)
        twins[(model, tag)] = twin and tuple(twin.split(":"))
        for key in filter(None, [(model, tag), twins[(model, tag)]]):
            built, kind, dataset = robustness.published(*key)
            group = by_dataset[(type(dataset).__name__, kind.name)]
            if key not in [k for k, *_ in group]:
                group.append((key, built, kind, dataset))
    scores = {}
    for (dataset_name, _), group in by_dataset.items():
        print(f"{dataset_name}: {', '.join(f'{m}:{t}' for (m, t), *_ in group)}", flush=True)
        _, _, kind, dataset = group[0]
        results = robustness.measure([built for _, built, _, _ in group], kind, dataset, names,
                                     corruptions.SEVERITIES, args.seed, args.limit,
                                     progress=lambda n, s: print(f"  {n} {s}", flush=True))
        scores.update({f"{m}:{t}": r.as_json() for ((m, t), *_), r in zip(group, results)})
    command = " ".join([Path(sys.executable).name, *sys.argv])
    rows = []
    for model, tag in chosen:
        twin = twins[(model, tag)] and ":".join(twins[(model, tag)])
        mine = robustness.Robustness.from_json(scores[f"{model}:{tag}"])
        ratio = mine.relative_to(robustness.Robustness.from_json(scores[twin])) if twin else None
        rows.append(dict(model=model, tag=tag, sha256=published[(model, tag)], twin=twin,
                         twin_sha256=twin and published[twins[(model, tag)]], relative_robustness=ratio,
                         command=command))
    result = dict(rows=rows, scores=scores, seed=args.seed, limit=args.limit, corruptions=list(names))
    if args.models:
        result = kept_from_last_run(result)
    print(render(result))
    print(f"wrote {write_result('robustness', result)}")
    return 0


def kept_from_last_run(result: dict) -> dict:
    """`result` (some models' checkpoints) with the rows of the last run for the other
    checkpoints whose files (and twins') are still published, if that run had the same
    seed, limit and corruptions."""
    last = read_result("robustness", missing_ok=True)
    kept = kept_rows(last, result, ("seed", "limit", "corruptions"))
    if not kept:
        return result
    needed = {f"{row['model']}:{row['tag']}" for row in kept} | {row["twin"] for row in kept if row["twin"]}
    scores = {**{k: v for k, v in last["scores"].items() if k in needed}, **result["scores"]}
    rows = sorted([*kept, *result["rows"]], key=lambda row: (row["model"], row["tag"]))
    return {**result, "rows": rows, "scores": scores}


def render(result: dict) -> str:
    """Every checkpoint: its clean and mean corrupted score, its twin's, the ratio."""
    scores = result["scores"]
    rows = []
    for row in result["rows"]:
        mine, twin = scores[f"{row['model']}:{row['tag']}"], row["twin"] and scores[row["twin"]]
        rows.append([row["model"], row["tag"], mine["metric"], f"{100 * mine['clean']:.2f}",
                     f"{100 * mine['mean']:.2f}", row["twin"] or "none published",
                     f"{100 * twin['clean']:.2f} / {100 * twin['mean']:.2f}" if twin else "-",
                     f"{row['relative_robustness']:.3f}" if row["relative_robustness"] is not None else "-"])
    images = f"the first {result['limit']:,} test images" if result["limit"] else "every test image"
    return (f"{len(result['corruptions'])} corruptions at severities 1-5 on {images} of each dataset, seed "
            f"{result['seed']}.\n\n" + table(["model", "tag", "metric", "clean", "mean corrupted", "float twin",
                                               "twin clean / corrupted", "relative robustness"], rows))


def model_table(result: dict, label: str) -> str:
    """One checkpoint's score per corruption and severity (the docs' model pages)."""
    record = result["scores"][label]
    head = ["corruption", *(str(s) for s in record["severities"]), "mean"]
    rows = [[name, *(f"{100 * v:.2f}" for v in row), f"{100 * sum(row) / len(row):.2f}"]
            for name, row in record["scores"].items()]
    return table(head, rows)


def severity_figure(result: dict, labels, plt):
    """The mean score over corruptions by severity (0: clean) of each of `labels`."""
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    for label in labels:
        record = result["scores"][label]
        means = [sum(row[i] for row in record["scores"].values()) / len(record["scores"])
                 for i in range(len(record["severities"]))]
        ax.plot([0, *record["severities"]], [100 * record["clean"], *(100 * m for m in means)], marker="o",
                label=label)
    ax.set_xlabel("severity")
    ax.set_ylabel(f"{result['scores'][labels[0]]['metric']} (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    sys.exit(main())
