"""`prodlens index ...` and `prodlens serve` exactly as the issue writes them, with a trained checkpoint."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, make_grocery, wait_until_serving

BIN = Path(sys.executable).parent


def run(args, env, check=True):
    proc = subprocess.run([str(BIN / "prodlens"), *args], capture_output=True, text=True, env=env, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_build_search_serve_edit_with_a_trained_model(tmp_path):
    root = make_grocery(tmp_path / "grocery", with_bad_rows=False)
    env = {**os.environ, "PRODLENS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    run(["train", "grocery", "--root", str(root), "--split", "train", "--out", str(tmp_path / "run"),
         "--config", "tiny"], env)
    index = tmp_path / "index"
    built = run(["index", "build", "grocery", "--root", str(root), "--out", str(index),
                 "--checkpoint", str(tmp_path / "run")], env)
    assert "3 items of 3 products" in built.stdout
    info = json.loads(run(["index", "info", str(index)], env).stdout)
    assert info["signature"]["kind"] == "trained" and info["dim"] == 32 + 512 and info["kind"] == "flat"  # + read block

    banana = root / "test" / "Banana" / "Banana" / "Banana_001.jpg"
    found = run(["index", "search", str(index), "--file", str(banana), "-k", "2"], env)
    first_row = next(line for line in found.stdout.splitlines() if line.startswith("│ 1 "))
    assert "Banana" in first_row

    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen([str(BIN / "prodlens"), "serve", "--index", str(index), "--port", str(port)], env=env,
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health", server, log)
        r = httpx.post(f"http://127.0.0.1:{port}/search", files={"file": ("b.jpg", banana.read_bytes(), "image/jpeg")},
                       data={"k": "3"}, timeout=60)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert results[0]["product_id"] == "Banana" and results[0]["domain"] == "page"
        assert isinstance(results[0]["score"], float)
        # the command line asks the running server: no model loaded, the same answers
        asked = run(["index", "search", "--server", f"http://127.0.0.1:{port}", "--file", str(banana), "-k", "3",
                     "--json"], env)
        assert [h["product_id"] for h in json.loads(asked.stdout)["results"]] == [h["product_id"] for h in results]
    finally:
        server.terminate()
        server.wait(30)

    # edits: remove a product, add the live photos of the train split with the index's own model
    run(["index", "remove", str(index), "--product", "Banana"], env)
    again = run(["index", "remove", str(index), "--product", "Banana"], env, check=False)  # nothing left to remove
    assert again.returncode == 1 and "removed 0 item(s)" in again.stdout and "not found: product Banana" in again.stdout
    added = run(["index", "add", str(index), "grocery", "--root", str(root), "--split", "train", "--domains", "live"], env)
    assert "added 6" in added.stdout
    info = json.loads(run(["index", "info", str(index)], env).stdout)
    assert info["domains"] == {"page": 2, "live": 6} and info["version"] == 3

    # the run directory moves: queries need the same weights, and say so when they are not
    shutil.move(tmp_path / "run", tmp_path / "moved")
    lost = run(["index", "search", str(index), "--text", "banana"], env, check=False)
    assert lost.returncode != 0 and "--checkpoint" in lost.stderr
    run(["index", "search", str(index), "--text", "banana", "--checkpoint", str(tmp_path / "moved")], env)
    run(["train", "grocery", "--root", str(root), "--split", "train", "--out", str(tmp_path / "other"),
         "--config", "tiny", "--epochs", "1"], env)
    other = run(["index", "search", str(index), "--text", "banana", "--checkpoint", str(tmp_path / "other")], env,
                check=False)
    assert other.returncode != 0 and "not the model that built this index" in other.stderr


@pytest.mark.slow
def test_two_concurrent_index_adds_keep_every_item_and_readers_see_whole_versions(tmp_path):
    """Two `prodlens index add` processes that both read version 1, embed, then save: the second to save replays
    its edit on the first's version (issue 25: before, the index kept one writer's half)."""
    import threading

    from prodlens.index import ProductIndex

    root = make_grocery(tmp_path / "grocery", with_bad_rows=False)
    env = {**os.environ, "PRODLENS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    index = tmp_path / "index"
    run(["index", "build", "grocery", "--root", str(root), "--out", str(index), "--no-thumbnails"], env)
    held = ProductIndex.open(index)
    logs = [tmp_path / f"add-{split}.log" for split in ("train", "test")]
    seen, stop = [], threading.Event()

    def read_while_writing():  # every open sees one whole version: its record's count is its item count
        while not stop.is_set():
            current = ProductIndex.open(index)
            seen.append((current.record["version"], len(current), current.record["count"]))

    with held.write_lock():  # both writers open version 1 and embed, then wait here to save
        writers = [subprocess.Popen([str(BIN / "prodlens"), "index", "add", str(index), "grocery", "--root",
                                     str(root), "--split", split, "--domains", "live", "--no-thumbnails"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
                   for split, log in zip(("train", "test"), logs)]
        while not all("waiting for it" in log.read_text() for log in logs):
            assert all(w.poll() is None for w in writers), [log.read_text() for log in logs]
            time.sleep(0.2)
    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        assert [w.wait() for w in writers] == [0, 0], [log.read_text() for log in logs]
    finally:
        stop.set()
        reader.join()
    final = ProductIndex.open(index)
    assert len(final) == 3 + 6 + 6 and final.record["version"] == 3
    assert {it.domain for it in final.items.values()} == {"page", "live"}
    assert sum("replaying 1 edit(s)" in log.read_text() for log in logs) == 1
    assert seen and all(n == count for _, n, count in seen)
    assert all(version in (1, 2, 3) for version, _, _ in seen)
