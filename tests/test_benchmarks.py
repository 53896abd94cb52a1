"""The benchmark scripts' logic (their timings are never tested)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import accuracy_cost  # noqa: E402
import common  # noqa: E402


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
