"""tf.distribute across processes: two workers on 127.0.0.1 (TF_CONFIG on loopback
ports) train as one worker with two replicas does, and a run whose worker is killed
mid-epoch stops by itself and resumes from its last backup."""
import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

QUICK = ["TrainBiRealNet20", "steps_per_epoch=3", "validation_steps=1", "batch_size=16", "progress_bar=False",
         "precision=float32"]
TIMEOUT = 400  # seconds per process: every one must stop by itself well before


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def zoo(args, env=None, logical_cpus=1):
    """`zoo args` in a new Python (with `logical_cpus` CPU devices), started, not waited for."""
    script = textwrap.dedent(f"""
        import sys
        import zoo, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * {logical_cpus})
        from zoo.cli import main
        sys.exit(main({args!r}))
    """)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})


def workers(args, out, kill_worker_1_at=""):
    """Two workers of one run into `out`; their (return code, stdout, stderr)."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [zoo([*args, f"output_dir={out}"], {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        "ZOO_KILL_AT": kill_worker_1_at if i == 1 else ""}) for i in range(2)]
    try:
        results = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            p.kill()  # a hung worker fails the test, and is not left behind
    return [(p.returncode, *result) for p, result in zip(procs, results)]


def weights(path):
    with h5py.File(path) as f:
        found = []
        f.visititems(lambda name, item: found.append((name, item[()])) if isinstance(item, h5py.Dataset) else None)
    return {name: value for name, value in found if name.startswith("layers/")}  # the model's, not the optimizer's


def epochs(path):
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_workers_train_as_one_worker_with_two_replicas(tmp_path):
    # With augmentation: each example's flip and crop are a function of its seed
    # (the run's and its place in the stream), alike in every process.
    args = [*QUICK, "epochs=1"]
    one = zoo([*args, "strategy=mirrored", f"output_dir={tmp_path / 'one'}"], logical_cpus=2)
    out, err = one.communicate(timeout=TIMEOUT)
    assert one.returncode == 0, err[-2000:]
    assert "2 replica(s)" in out
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["test_examples"] == 10_000
    (code0, out0, err0), (code1, out1, err1) = workers([*args, "strategy=multi_worker"], tmp_path / "two")
    assert code0 == code1 == 0, (err0 + err1)[-3000:]
    assert "worker-1: trained; the chief writes" in out1 and "Test top-1" in out0
    assert not (tmp_path / "two" / "worker-1").exists()  # the chief alone writes the run's files
    a, b = weights(tmp_path / "one" / "model.weights.h5"), weights(tmp_path / "two" / "model.weights.h5")
    assert a.keys() == b.keys() and len(a) > 50
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_a_killed_worker_stops_the_run_which_resumes_from_its_last_backup(tmp_path):
    args = [*QUICK, "epochs=2", "strategy=multi_worker"]
    (code0, _, err0), (code1, _, _) = workers(args, tmp_path, kill_worker_1_at="batch:5")  # epoch 2, step 2
    assert code1 == -9  # SIGKILL
    assert code0 == 2 and "zoo: error: a worker of this multi-worker run stopped" in err0
    assert epochs(tmp_path / "history.csv") == [0] and not (tmp_path / "metrics.json").exists()

    (code0, out0, err0), (code1, out1, _) = workers(args, tmp_path)
    assert code0 == code1 == 0, err0[-3000:]
    assert "Epoch 2/2" in out0 and "Epoch 1/2" not in out0 and "Epoch 1/2" not in out1  # resumed, not restarted
    assert epochs(tmp_path / "history.csv") == [0, 1]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 2
