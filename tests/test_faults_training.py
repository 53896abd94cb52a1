"""Training under faults: SIGKILL at the training's fault points, two trainings into one
run folder, a folder of another task or settings, and the one-line errors of bad
settings and damaged run folders (docs/training.md, "What a run folder guarantees")."""
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from zookeeper import configure

from zoo.cli import main
from zoo.training import runs
from zoo.training.optimizers import Optimizer

QUICK = ["dataset=FashionMNIST", "steps_per_epoch=2", "validation_steps=1", "batch_size=16", "progress_bar=False"]


def train_argv(out, *settings, task="TrainBiRealNet20", epochs=3):
    return [task, f"epochs={epochs}", *QUICK, *settings, f"output_dir={out}"]


def zoo(argv, kill_at=None, **kwargs):
    """A `zoo` process (SIGKILLed at the fault point `kill_at`, `zoo.io.fault_point`)."""
    env = {k: v for k, v in os.environ.items() if k != "ZOO_KILL_AT"}
    env.update({"ZOO_KILL_AT": kill_at} if kill_at else {})
    return subprocess.Popen([sys.executable, "-m", "zoo.cli", *map(str, argv)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def run_zoo(argv, kill_at=None):
    process = zoo(argv, kill_at)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def in_process(argv):
    """(exit status, stderr) of `zoo.cli.main(argv)` in this process."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(list(map(str, argv)))
    return code, err.getvalue(), out.getvalue()


def history_epochs(path):
    with open(path, newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def snapshot(folder):
    """Every file of a run folder (but its lock) -> its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != runs.LOCK}


def temp_checkpoints(out):
    return sorted(p.name for p in (out / "backup").rglob("*_temp"))


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """One run folder of `zoo TrainBiRealNet20 epochs=3`, SIGKILLed at three fault points
    in turn and resumed by the same command each time, then finished; while the last
    `zoo` process held the folder, a second training into it was tried in this process.

    Returns:
        (the folder, [(kill point, exit status, history epochs, ckpt-*_temp folders)
        after each `zoo` process], the last process' PID and output, what the second
        training returned).
    """
    out = tmp_path_factory.mktemp("faults") / "run"
    argv = train_argv(out)
    # Mid-epoch 1 (step 3, after epoch 0's backup); while epoch 2's checkpoint is written
    # (its row is in history.csv, its checkpoint only in ckpt-3_temp); between the final
    # weights and metrics.json.
    steps = []
    for point in ("batch:3", "checkpoint:2", "final_save"):
        code, output = run_zoo(argv, kill_at=point)
        steps.append((point, code, history_epochs(out / "history.csv"), temp_checkpoints(out)))
        assert code == -9, output[-3000:]
    last = zoo(argv)
    deadline = time.monotonic() + 240
    while str(last.pid) not in ((out / runs.LOCK).read_text() if (out / runs.LOCK).exists() else ""):
        assert last.poll() is None and time.monotonic() < deadline, "the last training never locked its folder"
        time.sleep(0.02)
    second = in_process(argv)
    output, _ = last.communicate(timeout=300)
    steps.append(("", last.returncode, history_epochs(out / "history.csv"), temp_checkpoints(out)))
    return out, steps, last.pid, output, second


def test_a_run_killed_at_any_fault_point_resumes_to_one_row_per_finished_epoch(killed_run):
    out, steps, _, output, _ = killed_run
    assert steps == [
        ("batch:3", -9, ["0"], []),
        ("checkpoint:2", -9, ["0", "1", "2"], ["ckpt-3_temp"]),  # epoch 2 is not backed up
        ("final_save", -9, ["0", "1", "2"], []),  # epoch 2 trained again, counted once
        ("", 0, ["0", "1", "2"], []),
    ], output[-3000:]
    assert (out / "model.h5").exists() and json.loads((out / "stage.json").read_text()) == {"epochs": 3}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["test_examples"] == 10_000
    assert metrics["wall_time_seconds"] == round(runs.epoch_seconds(out / "history.csv"), 1)


def test_a_second_training_into_a_running_folder_is_refused_and_the_first_finishes(killed_run):
    out, steps, pid, output, (code, err, _) = killed_run
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "in use by" in err and f"process {pid} on " in err and "since" in err
    assert steps[-1][1] == 0, output[-3000:]
    assert json.loads((out / "run.json").read_text())["config"]["batch_size"] == "16"


def test_a_run_folder_refuses_another_task_and_keeps_its_record(killed_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(killed_run[0], out)
    before = snapshot(out)
    code, err, _ = in_process(train_argv(out, task="TrainIRNetResNet20"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "is the run folder of TrainBiRealNet20" in err and "not of TrainIRNetResNet20" in err
    assert snapshot(out) == before


def test_a_finished_run_refuses_other_settings_and_names_them(killed_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(killed_run[0], out)
    before = snapshot(out)
    code, err, _ = in_process(train_argv(out, "optimizer.learning_rate=0.5", "batch_size=64"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "optimizer.learning_rate=0.5 (run: 0.001)" in err and "batch_size=64 (run: 16)" in err
    assert "progress_bar=" not in err and "output_dir=" not in err
    assert snapshot(out) == before


def test_a_finished_run_run_again_prints_its_result_and_writes_nothing(killed_run, tmp_path):
    out = tmp_path / "moved"  # a moved folder, with a progress bar: settings that may change
    shutil.copytree(killed_run[0], out)
    before = snapshot(out)
    argv = [a for a in train_argv(out) if a != "progress_bar=False"] + ["progress_bar=True"]
    code, err, printed = in_process(argv)
    assert code == 0, err
    top1 = json.loads((out / "metrics.json").read_text())["top1"]
    assert "finished earlier" in printed and f"top-1 {top1:.2%}" in printed
    assert snapshot(out) == before


def test_an_integer_learning_rate_is_a_float():
    for schedule in ("constant", "linear", "poly", "cosine", "steps"):
        optimizer = Optimizer()
        configure(optimizer, {"learning_rate": 1, "schedule": schedule, "decay_epochs": [1], "warmup_epochs": 1,
                              "warmup_from": 0, "power": 2, "decay_factor": 1})
        built = optimizer.build(steps_per_epoch=2, epochs=3)
        assert float(built.learning_rate) >= 0


@pytest.mark.parametrize("setting, message", [
    ("optimizer.learning_rate=-0.1", "optimizer.learning_rate=-0.1 is negative"),
    ("batch_size=0", "batch_size=0 is not a positive number"),
    ("batch_size=-16", "batch_size=-16 is not a positive number"),
    ("epochs=0", "epochs=0 is not a positive number"),
    ("epochs=-3", "epochs=-3 is not a positive number"),
    ("model.num_classes=0", "model.num_classes=0 is not a positive number"),
])
def test_a_bad_setting_is_one_line_before_any_file_is_written(tmp_path, setting, message):
    out = tmp_path / "new"
    code, err, _ = in_process(train_argv(out, setting))
    assert code == 2 and message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()


def test_an_output_dir_that_is_a_file_or_under_one_is_one_line(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("not a folder\n")
    for out, message in [(file, "is a file"), (file / "run", f"is under {file}, which is a file")]:
        code, err, _ = in_process(train_argv(out))
        assert code == 2 and f"output_dir={out} {message}" in err
        assert "Traceback" not in err and err.count("\n") == 1
    assert file.read_text() == "not a folder\n"


def test_a_history_with_a_second_header_still_sums_its_wall_time(tmp_path):
    # What two trainings into one folder used to leave: a second header, epoch 0 twice.
    path = tmp_path / "history.csv"
    path.write_text("epoch,epoch_seconds,loss\n0,2.0,1.5\n1,3.0,1.0\nepoch,epoch_seconds,loss\n0,4.0,1.4\n")
    assert runs.epoch_seconds(path) == 7.0
    assert [row["epoch"] for row in runs.read_history(path)] == ["0", "1"]


def test_evaluate_a_missing_run_folder_says_so(tmp_path):
    code, err, _ = in_process(["evaluate", tmp_path / "nope"])
    assert code == 2 and f"No such run folder '{tmp_path / 'nope'}'" in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("name, damage", [
    ("run.json", lambda p: p.write_text('{"model": "BiRealNet20", "task"')),
    ("metrics.json", lambda p: p.write_text("")),
    ("model.h5", lambda p: p.write_bytes(p.read_bytes()[:5000])),
])
def test_evaluate_a_damaged_run_folder_names_the_file(killed_run, tmp_path, name, damage):
    out = tmp_path / "run"
    shutil.copytree(killed_run[0], out)
    damage(out / name)
    code, err, _ = in_process(["evaluate", out])
    assert code == 2 and str(out / name) in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_truncated_final_weights_of_a_run_name_the_file(killed_run, tmp_path):
    # Killed after stage.json, before metrics.json: the run loads its final weights.
    out = tmp_path / "run"
    shutil.copytree(killed_run[0], out)
    (out / "metrics.json").unlink()
    weights = out / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:5000])
    code, err, _ = in_process(train_argv(out))
    assert code == 2 and str(weights) in err and "truncated" in err
    assert "Traceback" not in err and err.count("\n") == 1
