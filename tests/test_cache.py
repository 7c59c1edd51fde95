import numpy as np

from prodlens.cache import FeatureCache
from prodlens.cache import file_digest


def test_cache_round_trip_and_persistence(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = np.ones((3, 1000), np.float16)
    cache.put_many("m1", "features", {"k1": a})
    cache.put_many("m1", "probs", {"k1": p})
    cache.close()
    again = FeatureCache(tmp_path / "c")
    got = again.get_many("m1", "features", ["k1", "k2"])
    assert set(got) == {"k1"} and np.array_equal(got["k1"], a) and got["k1"].dtype == np.float32
    assert again.get("m1", "probs", "k1").dtype == np.float16
    assert again.get("other-model", "features", "k1") is None  # keys are per model
    assert again.hits == 2 and again.misses == 2


def test_file_digest_follows_content_not_name(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"same")
    (tmp_path / "b.jpg").write_bytes(b"same")
    (tmp_path / "c.jpg").write_bytes(b"different")
    assert file_digest(tmp_path / "a.jpg") == file_digest(tmp_path / "b.jpg") != file_digest(tmp_path / "c.jpg")


def test_a_home_relative_cache_path_goes_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    cache = FeatureCache("~/.cache/prodlens")  # the README's example
    assert cache.path == str(tmp_path / "home" / ".cache" / "prodlens" / "features.sqlite")
    assert not (tmp_path / "~").exists()
