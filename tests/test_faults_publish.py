"""Publishing is all or nothing: `zoo weights publish` killed (SIGKILL) at each step leaves
an index whose every tag loads and verifies, old or new, never a mix (issue 18, case 2)."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

import zoo
from zoo import kinds
from zoo import weights as index
from zoo.cli import main
from zoo.io import ZooError, exclusive_lock, save_model
from zoo.training.evaluation import make_dataset
from zoo.training.publish import publish


def finished_run(folder, seed):
    """A run folder as training leaves it: a random model (the tests' toy, cheap to
    evaluate) and its true test score."""
    folder.mkdir(parents=True)
    tf.keras.utils.set_random_seed(seed)
    model = zoo.registry.get("ToyNet").build(input_shape=(28, 28, 1))
    save_model(model, folder / "model.weights.h5", weights_only=True)
    result = kinds.get("classification").evaluate(model, make_dataset("FashionMNIST"), 1000)
    (folder / "metrics.json").write_text(json.dumps(dict(
        model="ToyNet", dataset="FashionMNIST", input_shape=[28, 28, 1], num_classes=10,
        top1=result["top1"], command=f"zoo TrainToyNet seed={seed}", epochs=1)))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return finished_run(root / "a", 1), finished_run(root / "b", 2)


@pytest.fixture(scope="module")
def published(runs, tmp_path_factory):
    """A folder with an index where run a is published as tag "t"."""
    folder = tmp_path_factory.mktemp("published")
    publish(str(runs[0]), tag="t", index_file=str(folder / "index.json"))
    return folder


def state(folder):
    """The index's records and the folder's files."""
    records = json.loads((folder / "index.json").read_text())["weights"]
    return records, sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def assert_every_tag_loads(folder, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(folder / "index.json"))
    for entry in index.entries():
        assert index.sha256(index.fetch(entry)) == entry.sha256
        zoo.registry.get("ToyNet").build(weights=entry.tag, include_top=entry.include_top)


@pytest.mark.parametrize("point", ["publish_staged:2", "publish_files_written", "publish_index_written"])
def test_a_publish_killed_at_any_step_leaves_the_old_index_or_the_new_one(point, runs, published, tmp_path,
                                                                         monkeypatch):
    folder = shutil.copytree(published, tmp_path / "published")
    before = state(folder)

    env = {**os.environ, "ZOO_KILL_AT": point}
    command = [sys.executable, "-m", "zoo.cli", "weights", "publish", str(runs[1]), "--tag", "t", "--force",
               "--index", str(folder / "index.json")]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    records, files = state(folder)
    commands = {r["command"] for r in records}
    assert commands == ({"zoo TrainToyNet seed=2"} if point == "publish_index_written"
                        else {"zoo TrainToyNet seed=1"})  # the new index, or the old one
    if point != "publish_index_written":
        assert records == before[0]
    assert_every_tag_loads(folder, monkeypatch)

    # The next publish finishes the job and leaves no file the index does not name.
    publish(str(runs[1]), tag="t", index_file=str(folder / "index.json"), force=True)
    records, files = state(folder)
    assert {r["command"] for r in records} == {"zoo TrainToyNet seed=2"}
    assert files == sorted(["index.json", *{name for r in records for name in (r["file"], r["history"])}])
    assert_every_tag_loads(folder, monkeypatch)


def test_published_files_are_named_by_their_content_and_never_overwritten(runs, tmp_path):
    run_a, run_b = runs
    folder = tmp_path / "published"
    first = publish(str(run_a), tag="t", index_file=str(folder / "index.json"))
    assert [e.file for e in first] == [f"ToyNet-t-{first[0].sha256[:8]}.weights.h5",
                                       f"ToyNet-t-notop-{first[1].sha256[:8]}.weights.h5"]
    other = publish(str(run_a), tag="u", index_file=str(folder / "index.json"))
    assert {e.tag for e in index.entries(folder / "index.json")} == {"t", "u"}
    replaced = publish(str(run_b), tag="t", index_file=str(folder / "index.json"), force=True)
    assert not (folder / first[0].file).exists() and (folder / other[0].file).exists()
    assert index.sha256(folder / replaced[0].file) == replaced[0].sha256


def test_publishing_onto_a_malformed_index_changes_nothing(runs, tmp_path, capsys):
    folder = tmp_path / "published"
    folder.mkdir()
    (folder / "index.json").write_text('{"schema": 2, "weights": [')
    assert main(["weights", "publish", str(runs[0]), "--tag", "t", "--index", str(folder / "index.json")]) == 2
    assert str(folder / "index.json") in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == ["index.json"]
    assert (folder / "index.json").read_text() == '{"schema": 2, "weights": ['


def test_two_publishes_into_one_index_take_turns(runs, tmp_path):
    folder = tmp_path / "published"
    with exclusive_lock(folder / "index.json.lock", "held by this test"):
        with pytest.raises(ZooError, match=r"is in use by process \d+"):
            publish(str(runs[0]), tag="t", index_file=str(folder / "index.json"))
    assert not (folder / "index.json").exists()
