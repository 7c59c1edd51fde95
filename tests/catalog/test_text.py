import pytest

from prodlens.catalog import Catalog, Product, Sample, validate_catalog
from prodlens.catalog.text import MAX_TEXT_CHARS, MAX_TEXT_FILE_BYTES, clean_text, read_text_file
from prodlens.errors import RecordError


def test_long_text_is_cut_and_whitespace_folded(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("word \n\t " * 200_000)  # ~1.6 MB
    text = read_text_file(path, "page/p1")
    assert len(text) == MAX_TEXT_CHARS and "  " not in text and "\n" not in text


def test_oversized_or_binary_text_names_the_record(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (MAX_TEXT_FILE_BYTES + 1))
    with pytest.raises(RecordError, match="page/p1: text file big.txt is"):
        read_text_file(big, "page/p1")
    with pytest.raises(RecordError, match="NUL"):
        clean_text("abc\x00def", "video/v1")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    with pytest.raises(RecordError, match="not valid UTF-8"):
        read_text_file(bad, "page/p2")


def test_page_without_any_text_is_reported(tmp_path):
    cat = Catalog.build(tmp_path, [Product("p1")], [Sample("page/p1", "p1", "page", images=("a.jpg",))])
    bad = validate_catalog(cat, check_media=False)
    assert [str(b) for b in bad] == ["[validate] page/p1: page has no title or description text"]
