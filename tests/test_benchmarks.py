"""The benchmark scripts' logic (their timings are never tested)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import accuracy_cost  # noqa: E402
import common  # noqa: E402
import pytest  # noqa: E402

from zoo import weights  # noqa: E402


def test_pareto_front_per_dataset():
    def point(model, dataset, ops, top1):
        return {"model": model, "tag": "t", "dataset": dataset, "ops": ops, "top1": top1}

    points = [point("cheap", "a", 1, 0.90), point("best", "a", 2, 0.95), point("dominated", "a", 3, 0.94),
              point("tie-but-costlier", "a", 2.5, 0.95), point("other", "b", 9, 0.5)]
    assert accuracy_cost.pareto(points, "ops") == {("cheap", "t"), ("best", "t"), ("other", "t")}


def test_interleaved_runs_every_contender_in_turn():
    calls = []
    times = common.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               warmup=1, steps=2, rounds=2)
    assert calls == ["a", "b", "a", "a", "b", "b", "a", "a", "b", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}


def test_results_are_written_with_machine_and_command(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    path = common.write_result("trial", {"rows": [1]})
    record = json.loads(path.read_text())
    assert record["rows"] == [1] and record["machine"]["cores"] >= 1 and record["command"]
    assert common.read_result("trial") == record


def test_a_partial_run_keeps_only_the_rows_that_still_describe_published_files(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "published_checkpoints",
                        lambda: {("A", "t"): "a1", ("B", "t"): "b2", ("C", "t"): "c1", ("A2", "t"): "x",
                                 ("FP", "t"): "f2"})

    def row(model, sha, twin=None, twin_sha=None):
        return {"model": model, "tag": "t", "sha256": sha, "twin": twin, "twin_sha256": twin_sha}

    last = [row("A", "a1"), row("B", "b1"), row("C", "c1"), row("D", "d1"), row("E", "e1"),
            row("A2", "x", "FP:t", "f1")]
    common.write_result("trial", {"limit": 5, "rows": last})
    new = {"limit": 5, "rows": [row("C", "c1")]}
    # A is current; B was re-published, D and E withdrawn; C is measured again; A2's twin changed.
    last_run = common.read_result("trial")
    assert common.kept_rows(last_run, new, ("limit",)) == [row("A", "a1")]
    assert common.kept_rows(last_run, {**new, "limit": None}, ("limit",)) == []
    assert common.read_result("missing", missing_ok=True) is None
    assert common.kept_rows(None, new, ("limit",)) == []


# Results with a row per published checkpoint; which checkpoints each one covers.
PER_CHECKPOINT = {"export_parity": lambda e: True, "robustness": lambda e: True,
                  "accuracy_cost": lambda e: "top1" in e.scores}


@pytest.mark.parametrize("name", PER_CHECKPOINT)
def test_committed_results_describe_the_published_checkpoints(name):
    published = common.published_checkpoints()
    rows = common.read_result(name)["rows"]
    stale = {(r["model"], r["tag"]) for r in rows if not common.is_current(r, published)}
    covered = {(e.model, e.tag) for e in weights.entries() if e.include_top and PER_CHECKPOINT[name](e)}
    missing = covered - {(r["model"], r["tag"]) for r in rows}
    models = sorted({model for model, _ in stale | missing})
    assert not stale | missing, (
        f"benchmarks/results/{name}.json does not describe the published files of "
        f"{', '.join(f'{m}:{t}' for m, t in sorted(stale | missing))} (re-published, new or withdrawn "
        f"since it ran): re-run .venv/bin/python benchmarks/{name}.py (with --models {' '.join(models)} where it "
        "takes it)")
