"""Downloads of checkpoints that go wrong, and the index and cache settings that are wrong
(issue 18): each ends in one WeightsError naming the file and the fix, and no download,
however it ends, leaves a `.part` file behind for long.

The server is a loopback HTTP server (127.0.0.1, a free port) in a daemon thread; each
of its handlers is bounded in bytes and time, and the fixture stops it.
"""
import hashlib
import http.server
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from zoo import weights
from zoo.weights import Entry, WeightsError

ROOT = Path(__file__).resolve().parents[1]
GOOD = hashlib.sha256(b"good").digest() * 2048  # 64 KiB
OTHER = hashlib.sha256(b"other").digest() * 2048
WRONG = GOOD[:-10] + b"0123456789"  # the same size, other bytes
CAP = 50 << 20  # the endless body stops here whatever the client does


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # no write to a client that stopped reading blocks longer

    def log_message(self, *args):
        pass

    def head(self, length=None, chunked=False):
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def do_GET(self):
        server, route = self.server, self.path.split("/")[1]
        server.requests[route] += 1
        try:
            if route in ("good", "wrong", "other"):
                body = {"good": GOOD, "wrong": WRONG, "other": OTHER}[route]
                self.head(len(body))
                self.wfile.write(body)
            elif route == "truncated":  # announces it all, sends half, closes
                self.head(len(GOOD))
                self.wfile.write(GOOD[: len(GOOD) // 2])
            elif route == "chunked":  # one whole chunk, then a chunk cut off mid-way
                self.head(chunked=True)
                self.wfile.write(b"4000\r\n" + GOOD[:0x4000] + b"\r\n" + b"4000\r\n" + GOOD[0x4000:0x4100])
            elif route == "endless":  # no length: sends until the client hangs up (or CAP)
                self.head()
                while server.sent < CAP and not server.stop.is_set():
                    self.wfile.write(GOOD)
                    server.sent += len(GOOD)
            elif route == "slow":  # a byte every 0.2 s
                self.head(len(GOOD))
                for i in range(50):
                    if server.stop.wait(0.2):
                        return
                    self.wfile.write(GOOD[i:i + 1])
            elif route == "paced":  # half, then the rest once a second download is half-way too
                self.head(len(GOOD))
                self.wfile.write(GOOD[: len(GOOD) // 2])
                try:
                    server.barrier.wait(timeout=10)
                except threading.BrokenBarrierError:
                    pass
                self.wfile.write(GOOD[len(GOOD) // 2:])
            else:
                self.send_error(404)
        except OSError:  # the client hung up: what some tests do on purpose
            pass


@pytest.fixture
def server():
    """The base url of the loopback server; it is shut down after the test."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests, httpd.sent, httpd.stop, httpd.barrier = Counter(), 0, threading.Event(), threading.Barrier(2)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.stop.set()
        httpd.barrier.abort()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(tmp_path / "index.json"))
    return tmp_path / "cache"


def entry(url, data=GOOD, size=None):
    return Entry(model="M", tag="t", include_top=True, input_shape=(1, 1, 1), num_classes=1, sha256=sha(data),
                 size=len(data) if size is None else size, url=url)


def files(folder):
    """Every file under `folder`, relative to it."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def parts(folder):
    return [p for p in files(folder) if p.endswith(".part")]


# -- the server's faults -----------------------------------------------------------------
def test_a_good_download_is_cached_with_its_url_in_the_path_and_mode_0644(server, cache):
    httpd, base = server
    umask = os.umask(0o077)  # 0o644 whatever the umask: a shared cache is readable
    try:
        path = weights.fetch(entry(f"{base}/good/model.h5"))
    finally:
        os.umask(umask)
    assert path.read_bytes() == GOOD and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert re.fullmatch(r"M/[0-9a-f]{16}/model\.h5", str(path.relative_to(cache)))
    assert weights.fetch(entry(f"{base}/good/model.h5")) == path and httpd.requests["good"] == 1
    assert files(cache) == [str(path.relative_to(cache))]


def test_two_urls_of_the_same_file_name_do_not_share_a_cached_file(server, cache):
    httpd, base = server
    good, other = entry(f"{base}/good/model.h5"), entry(f"{base}/other/model.h5", OTHER)
    a, b = weights.fetch(good), weights.fetch(other)
    assert a != b and a.name == b.name == "model.h5"
    assert weights.fetch(good).read_bytes() == GOOD and weights.fetch(other).read_bytes() == OTHER
    assert (httpd.requests["good"], httpd.requests["other"]) == (1, 1), "each is downloaded once"


def test_wrong_bytes_of_the_right_size_are_a_checksum_mismatch(server, cache):
    _, base = server
    with pytest.raises(WeightsError, match=rf"^Checksum mismatch for {base}/wrong/model.h5: got sha256 {sha(WRONG)}, "
                       rf"the index says {sha(GOOD)}\. The file was not kept; the server's copy is not the published"):
        weights.fetch(entry(f"{base}/wrong/model.h5"))
    assert files(cache) == []


@pytest.mark.parametrize("route, size, got", [
    ("truncated", len(GOOD), f"{len(GOOD) // 2} of {len(GOOD)}"),  # a Content-Length not delivered in full
    ("truncated", 0, f"{len(GOOD) // 2} of at least {len(GOOD)}"),  # ... for an entry without its size
    ("chunked", len(GOOD), rf"\d+ of {len(GOOD)}"),  # a chunked body dropped midway
], ids=["size known", "size unknown", "chunked"])
def test_a_body_cut_short_is_reported_as_such(server, cache, route, size, got):
    _, base = server
    url = f"{base}/{route}/model.h5"
    with pytest.raises(WeightsError, match=rf"^Download of {url} got {got} bytes; the download was cut short, "
                       "try again\\.$"):
        weights.fetch(entry(url, size=size))
    assert files(cache) == []


def test_an_endless_body_is_cut_off_one_byte_past_the_published_size(server, cache):
    httpd, base = server
    url = f"{base}/endless/model.h5"
    with pytest.raises(WeightsError, match=rf"^{url} sent more than the published size of {len(GOOD)} bytes; "
                       "stopped reading and kept nothing"):
        weights.fetch(entry(url))
    assert files(cache) == []
    assert httpd.sent < CAP, "the client stopped reading, so the server stopped sending"


def test_a_slow_dribble_times_out_rather_than_hangs(server, cache):
    _, base = server
    url, path = f"{base}/slow/model.h5", cache / "slow" / "model.h5"
    start = time.monotonic()
    with pytest.raises(WeightsError, match=rf"^Could not download {url} \(.*timed out.*\)\. Check the network"):
        weights.download(url, path, sha(GOOD), timeout=0.1)
    assert time.monotonic() - start < 3
    assert files(cache) == []


def test_ctrl_c_during_a_download_leaves_no_part_file(server, cache):
    _, base = server
    import signal

    # Ctrl-C while bytes dribble in: a real SIGINT to the main thread, which interrupts its
    # blocking read (`_thread.interrupt_main` sets a flag only, seen when the read returns).
    # Python's own handler, as at a terminal: a process started in the background by a
    # shell without job control (`nohup make test &`) inherits SIGINT ignored.
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            weights.download(f"{base}/slow/model.h5", cache / "slow" / "model.h5", sha(GOOD), timeout=5)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, handler)
    assert files(cache) == []


def test_no_server_is_a_clear_error_naming_the_url(cache):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # nobody listens
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/model.h5"
        with pytest.raises(WeightsError, match=rf"^Could not download {url} \(.*\)\. Check the network connection"):
            weights.fetch(entry(url))
    assert parts(cache) == []


# -- what a killed process leaves, and two processes at once -----------------------------
FETCH = """
import json, sys, types
zoo = types.ModuleType("zoo")  # zoo.weights without zoo/__init__ (TensorFlow): a quick process
zoo.__path__ = [sys.argv[1]]
sys.modules["zoo"] = zoo
from zoo import weights
record = json.loads(sys.argv[2])
print(weights.fetch(weights.Entry(**{**record, "input_shape": tuple(record["input_shape"])})))
"""


def fetch_in(entry_, env=None, **kwargs):
    """A process that fetches `entry_` (started, not waited for)."""
    return subprocess.Popen([sys.executable, "-c", FETCH, str(ROOT / "zoo"), json.dumps(entry_.to_json())],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_a_part_file_of_a_killed_download_is_removed_by_the_next_download(server, cache):
    _, base = server
    good = entry(f"{base}/good/model.h5")
    killed = fetch_in(good, {"ZOO_KILL_AT": "download.chunk"})  # SIGKILL once the first bytes are written
    assert killed.wait(30) == -9, killed.communicate()
    (left,) = parts(cache)
    assert re.fullmatch(rf"M/[0-9a-f]{{16}}/\.model\.h5\.{killed.pid}@[\w-]*\.\w+\.part", left)
    path = weights.fetch(good)
    assert path.read_bytes() == GOOD and files(cache) == [str(path.relative_to(cache))]


def test_the_sweep_keeps_live_and_recent_part_files_and_removes_stale_ones(server, cache):
    _, base = server
    good = entry(f"{base}/good/model.h5")
    folder = weights.cache_path(good).parent
    folder.mkdir(parents=True)
    host = weights._writer().split("@")[1]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process of this host that is gone
    names = {
        "live": f".model.h5.{os.getpid()}@{host}.abcd1234.part",  # a running download of this host: kept
        "other host": ".model.h5.1@elsewhere.abcd1234.part",  # cannot tell: kept while recent
        "old": ".model.h5.1@elsewhere.efgh5678.part",  # a day old: removed whoever wrote it
        "dead": f".model.h5.{gone.pid}@{host}.ijkl9012.part",  # its writer is gone
        "unnamed": ".model.h5.part",  # no writer in the name: kept while recent
        "not a part file": "notes.txt",
    }
    for name in names.values():
        (folder / name).write_bytes(b"x")
    a_day_ago = time.time() - weights.STALE_SECONDS - 60
    os.utime(folder / names["old"], (a_day_ago, a_day_ago))
    weights.fetch(good)
    kept = {names[k] for k in ("live", "other host", "unnamed", "not a part file")}
    assert set(os.listdir(folder)) == {"model.h5", *kept}


def test_two_processes_downloading_one_url_both_get_the_verified_file(server, cache):
    httpd, base = server
    paced = entry(f"{base}/paced/model.h5")
    both = [fetch_in(paced) for _ in range(2)]  # the server holds each half-way until both are
    outputs = [p.communicate(timeout=30) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    path = weights.cache_path(paced)
    assert {out.strip() for out, _ in outputs} == {str(path)}
    assert httpd.requests["paced"] == 2 and not httpd.barrier.broken, "the two downloads overlapped"
    assert path.read_bytes() == GOOD and files(cache) == [str(path.relative_to(cache))]


# -- the cache folder --------------------------------------------------------------------
def test_a_tilde_in_the_cache_dir_is_the_home_folder(server, tmp_path, monkeypatch):
    _, base = server
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_CACHE_DIR", "~/zoo-cache")
    monkeypatch.chdir(tmp_path)
    assert weights.cache_dir() == tmp_path / "home" / "zoo-cache"
    path = weights.fetch(entry(f"{base}/good/model.h5"))
    assert path.is_relative_to(tmp_path / "home" / "zoo-cache") and not (tmp_path / "~").exists()


@pytest.fixture
def read_only(tmp_path):
    """A folder this user cannot write in (root may write anywhere but in /sys)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not os.access(folder, os.W_OK):
            yield folder
        elif Path("/sys/kernel").is_dir() and not Path("/sys/binary-zoo-cache").exists():
            yield Path("/sys/binary-zoo-cache")
        else:
            pytest.skip("no read-only folder for this user")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("where", ["read-only", "a file", "under a file"])
def test_a_cache_dir_that_cannot_be_written_is_one_clear_error(server, tmp_path, monkeypatch, request, where):
    _, base = server
    (tmp_path / "file").write_text("not a folder")
    folder = {"read-only": lambda: request.getfixturevalue("read_only"), "a file": lambda: tmp_path / "file",
              "under a file": lambda: tmp_path / "file" / "cache"}[where]()
    monkeypatch.setenv("ZOO_CACHE_DIR", str(folder))
    good = entry(f"{base}/good/model.h5")
    with pytest.raises(WeightsError, match=rf"^Cannot write {re.escape(str(weights.cache_path(good)))}: "
                       rf"{re.escape(str(weights.cache_path(good).parent))} is not a writable folder \(.+\)\. "
                       rf"Point ZOO_CACHE_DIR \(now {re.escape(str(folder))}\) at a writable folder, or put the file "
                       "there yourself"):
        weights.fetch(good)


@pytest.mark.parametrize("url", ["data:application/octet-stream;base64,Z29vZA==", "ftp://example.org/model.h5",
                                 "/just/a/path.h5"])
def test_an_entry_url_that_is_not_http_or_a_file_is_refused(cache, url):
    with pytest.raises(WeightsError, match=rf"^Cannot download '{re.escape(url)}': only https://, http:// and "
                       rf"file:// urls are supported; fix the url of its entry in the weights index "
                       rf"{re.escape(str(cache.parent / 'index.json'))}\.$"):
        weights.fetch(entry(url, b"good"))
    assert not cache.exists()


# -- the index ---------------------------------------------------------------------------
RECORD = {"model": "M", "tag": "t", "include_top": True, "input_shape": [1, 1, 1], "num_classes": 1, "sha256": "0"}
BROKEN = {
    "not JSON": ('{"schema": 2, "weights": [', r"Cannot read the weights index {path} \(not valid JSON: .+\)"),
    "not UTF-8": (b"\xff\xfe{}", r"Cannot read the weights index {path} \(not valid JSON: .+\)"),
    "a list": ("[]", r'{path} is not a weights index: it must be a JSON object whose "weights" is a list of records'),
    "no weights": ('{"schema": 2}', r"{path} is not a weights index"),
    "weights an object": ('{"schema": 2, "weights": {}}', r"{path} is not a weights index"),
    "a record not an object": ('{"schema": 2, "weights": [1]}', r"{path} is not a weights index"),
    "a record without sha256": (
        {"schema": 2, "weights": [RECORD, {k: v for k, v in RECORD.items() if k != "sha256"}]},
        r"Record 1 of the weights index {path} \(model 'M', tag 't'\) lacks the required key 'sha256'"),
    "a record with a bad shape": ({"schema": 2, "weights": [{**RECORD, "input_shape": 3}]},
                                  r"Record 0 of the weights index {path} \(model 'M', tag 't'\) is invalid \(.+\)"),
    "a folder": (None, r"Cannot read the weights index {path} \(Is a directory\)"),
}


def write(path, content):
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_index_of_the_users_is_one_error_naming_it(tmp_path, monkeypatch, case):
    content, message = BROKEN[case]
    path = write(tmp_path / "index.json", content)
    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(path))
    fix = rf".*; fix it, or point ZOO_WEIGHTS_INDEX \(now {re.escape(str(path))}\) at an index written by"
    with pytest.raises(WeightsError, match="^" + message.format(path=re.escape(str(path))) + fix):
        weights.entries()


@pytest.mark.parametrize("case", ["not JSON", "a list", "a record without sha256", "a folder"])
def test_a_broken_packaged_index_says_reinstall(tmp_path, monkeypatch, case):
    content, message = BROKEN[case]
    path = write(tmp_path / "index.json", content)
    monkeypatch.delenv("ZOO_WEIGHTS_INDEX", raising=False)
    monkeypatch.setattr(weights, "index_path", lambda: path)  # as if the installed index were broken
    message = "^" + message.format(path=re.escape(str(path))) + r".*; reinstall binary-zoo\.$"
    with pytest.raises(WeightsError, match=message):
        weights.entries()


def test_an_index_rewritten_within_the_same_mtime_is_read_again(tmp_path, monkeypatch):
    path = tmp_path / "index.json"
    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(path))
    path.write_text(json.dumps({"schema": 2, "weights": [RECORD]}))
    assert [e.tag for e in weights.entries()] == ["t"]
    mtime = path.stat().st_mtime_ns
    path.write_text("{")
    os.utime(path, ns=(mtime, mtime))  # a rewrite the clock cannot tell apart
    with pytest.raises(WeightsError, match="not valid JSON"):
        weights.entries()


def test_a_file_next_to_a_users_index_that_does_not_match_says_restore_or_republish(tmp_path, monkeypatch):
    index = tmp_path / "index.json"
    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(index))
    (tmp_path / "M-t.weights.h5").write_bytes(WRONG)
    weights.write_index([Entry(model="M", tag="t", include_top=True, input_shape=(1, 1, 1), num_classes=1,
                               sha256=sha(GOOD), size=len(GOOD), file="M-t.weights.h5")])
    (entry_,) = weights.entries()
    fix = (rf"it is the file next to your index ZOO_WEIGHTS_INDEX={re.escape(str(index))}: restore it, or "
           r"re-publish it with `zoo weights publish RUN_DIR --force`\.$")
    checkpoint = re.escape(str(tmp_path / "M-t.weights.h5"))
    with pytest.raises(WeightsError, match=rf"^Checkpoint {checkpoint} for M \(t\) does not match its sha256 "
                       rf"{sha(GOOD)}; " + fix):
        weights.fetch(entry_)
    (tmp_path / "M-t.weights.h5").unlink()
    with pytest.raises(WeightsError, match=rf"^Checkpoint {checkpoint} for M \(t\) is missing; " + fix):
        weights.fetch(entry_)
