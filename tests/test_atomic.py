import pytest

from prodlens import atomic


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "index.bin"
    atomic.write_bytes(target, b"version 1")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half of version 2")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"version 1"
    assert [p.name for p in tmp_path.iterdir()] == ["index.bin"]  # no temporary left behind


def test_write_json(tmp_path):
    atomic.write_json(tmp_path / "a" / "m.json", {"x": "é"})
    assert (tmp_path / "a" / "m.json").read_text(encoding="utf-8").strip() == '{\n  "x": "é"\n}'
