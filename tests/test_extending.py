"""A model family from outside the package (tests/toy_family.py, named only in
ZOO_FAMILIES by tests/conftest.py) reaches everything a paper's own family does: the
registry and `zoo list`, its constructor, its `Train<Model>` task and run record. The
contract tests and the docs build (tests/test_contracts.py, tests/test_docs.py) iterate
the registry, so it goes through those too."""
import json
import re
from pathlib import Path

import zoo
from zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_no_file_of_the_package_names_the_toy_family():
    for folder in ("zoo", "training"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "ToyNet" not in text and "toy_family" not in text, path


def test_a_family_from_outside_is_listed_built_and_trained(tmp_path, capsys):
    assert main(["list"]) == 0
    assert re.search(r"^ToyNet +Toy +32x32x3 ", capsys.readouterr().out, re.M)
    assert zoo.ToyNet(input_shape=(28, 28, 1), filters=4).get_layer("binary_conv").filters == 4
    out = tmp_path / "toy"
    assert main(["TrainToyNet", "dataset=FashionMNIST", "epochs=1", "steps_per_epoch=2", "validation_steps=1",
                 "batch_size=8", "model.filters=4", "progress_bar=False", f"output_dir={out}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["model"], metrics["task"], metrics["kind"]) == ("ToyNet", "TrainToyNet", "classification")
    assert metrics["options"] == {"filters": 4} and metrics["bops"] > 0 and metrics["test_examples"] == 10_000
