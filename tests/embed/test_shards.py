"""Sharded embedding of a manifest: one process and two torchrun processes agree with embedding the catalogue whole;
a lost shard is redone alone; another model cannot resume the run; bad media are reported, not fatal."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prodlens.catalog import import_rope, open_manifest
from prodlens.demo.rope_files import write_rope_files
from prodlens.embed import EmbedConfig, Embeddings, FeatureCache, ProductEmbedder
from prodlens.embed.shards import embed_manifest, shard_name
from prodlens.errors import ProdlensError

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    base = tmp_path_factory.mktemp("shards")
    truth = write_rope_files(base / "rope", 48, frames=2, seed=2, media_samples=48)
    bad_frame = next(n for n in truth.media_names if "a32e" in n)  # a page image: its page cannot embed
    (base / "rope" / "media" / bad_frame).unlink()
    (base / "rope" / "media" / bad_frame).write_bytes(b"\xff\xd8\xff not really a jpeg")
    import_rope(base / "rope", base / "manifest", progress=False)
    return base / "manifest"


def _by_id(emb):
    return {s: v for s, v in zip(emb.sample_ids, emb.vectors)}


def test_shards_match_the_whole_catalogue_and_resume(manifest, embedder, tmp_path):
    view = open_manifest(manifest)
    whole = embedder.embed_catalog(view.to_catalog(), progress=False)
    run = embed_manifest(view, embedder, tmp_path / "out", shard_rows=16, batch_rows=8, progress=False)
    assert run.complete and run.shards == 3 and run.done_here == [0, 1, 2]
    sharded = Embeddings.load(tmp_path / "out")
    assert sorted(sharded.sample_ids) == sorted(whole.sample_ids)
    a, b = _by_id(whole), _by_id(sharded)
    assert max(np.abs(a[s] - b[s]).max() for s in a) < 1e-5
    assert len(sharded.bad) == len(whole.bad) >= 1  # the broken frame is reported where its shard is
    info = json.loads((tmp_path / "out" / "shards.json").read_text())
    assert [f["rows"] for f in info["files"]] and sum(f["rows"] for f in info["files"]) == len(sharded)

    (tmp_path / "out" / shard_name(1)).unlink()  # a lost (or never finished) shard
    (tmp_path / "out" / "shards.json").unlink()
    again = embed_manifest(view, embedder, tmp_path / "out", shard_rows=16, batch_rows=8, progress=False)
    assert again.done_here == [1] and again.skipped == 2 and again.complete
    assert _by_id(Embeddings.load(tmp_path / "out")).keys() == b.keys()

    other = ProductEmbedder(EmbedConfig(frames=4, page_inputs="image"), FeatureCache(None))
    with pytest.raises(ProdlensError, match="another embedding run"):
        embed_manifest(view, other, tmp_path / "out", shard_rows=16, progress=False)


def test_an_unfinished_run_is_not_loaded_as_complete(manifest, embedder, tmp_path):
    embed_manifest(open_manifest(manifest, split="train", domains=["page"]), embedder, tmp_path / "out",
                   shard_rows=16, progress=False)
    (tmp_path / "out" / "shards.json").unlink()
    with pytest.raises(ProdlensError, match="not finished"):
        Embeddings.load(tmp_path / "out")


@pytest.mark.slow
def test_two_torchrun_processes_split_the_shards(manifest, embedder, tmp_path):
    env = {**os.environ, "PRODLENS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    common = ["embed", "manifest", "--root", str(manifest), "--shard-rows", "16", "--frames", "4",
              "--batch-size", "16"]
    two = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "prodlens", *common,
                          "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=1800)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "rank 0 of 2: embedded 2 shard(s)" in two.stdout and "rank 1 of 2: embedded 1 shard(s)" in two.stdout
    single = embedder.embed_catalog(open_manifest(manifest).to_catalog(), progress=False)
    got = _by_id(Embeddings.load(tmp_path / "two"))
    want = _by_id(single)
    assert got.keys() == want.keys()
    assert max(np.abs(got[s] - want[s]).max() for s in want) < 1e-4
    assert sorted(p.name for p in (tmp_path / "two" / "cache").iterdir())[:3] == [
        "shard-00000.sqlite", "shard-00001.sqlite", "shard-00002.sqlite"]
