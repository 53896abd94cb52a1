"""Accuracy per cost: every published checkpoint's top-1 against its OPs and memory.

Reads the weights index (top-1 on the full test split, cost at the checkpoint's
input, both recorded by `zoo weights publish`) and marks the checkpoints on the Pareto
front of each dataset: no other checkpoint of the dataset is at least as accurate
with fewer OPs (or, in the memory column, less memory).

    .venv/bin/python benchmarks/accuracy_cost.py

Prints one table and writes benchmarks/results/accuracy_cost.json.
"""
import sys

from common import table, write_result


def pareto(points, cost: str) -> set:
    """(model, tag) of the checkpoints no other one beats on top-1 at a lower or equal cost."""
    front = set()
    for p in points:
        beaten = any(q is not p and q["dataset"] == p["dataset"] and q[cost] <= p[cost] and q["top1"] >= p["top1"]
                     and (q[cost] < p[cost] or q["top1"] > p["top1"]) for q in points)
        if not beaten:
            front.add((p["model"], p["tag"]))
    return front


def main() -> int:
    from zoo import weights

    points = [
        {"model": e.model, "tag": e.tag, "sha256": e.sha256, "dataset": e.dataset,
         "input": "x".join(map(str, e.input_shape)),
         "top1": e.scores["top1"], "ops": e.cost["ops"], "bops": e.cost["bops"], "flops": e.cost["flops"],
         "memory_mbit": e.cost["memory_mbit"], "epochs": (e.pretrain_epochs or 0) + (e.epochs or 0)}
        for e in weights.entries() if e.include_top and "top1" in e.scores
    ]
    by_ops, by_memory = pareto(points, "ops"), pareto(points, "memory_mbit")
    for p in points:
        p["pareto_ops"], p["pareto_memory"] = (p["model"], p["tag"]) in by_ops, (p["model"], p["tag"]) in by_memory
    points.sort(key=lambda p: (p["dataset"], p["ops"]))
    path = write_result("accuracy_cost", {"what": "published checkpoints, from the weights index", "rows": points})
    print(render({"rows": points}))
    print(f"written to {path}")
    return 0


def render(result: dict) -> str:
    rows = [[p["model"], p["tag"], p["dataset"], p["input"], f"{100 * p['top1']:.2f}%", f"{p['ops']:.3g}",
             f"{p['memory_mbit']:.2f}", p["epochs"], "yes" if p["pareto_ops"] else "-",
             "yes" if p["pareto_memory"] else "-"] for p in result["rows"]]
    return table(["model", "tag", "dataset", "input", "top-1", "OPs", "Mbit", "epochs",
                  "Pareto (OPs)", "Pareto (memory)"], rows)


if __name__ == "__main__":
    sys.exit(main())
