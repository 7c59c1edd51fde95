import numpy as np
from PIL import Image

from prodlens.evaluate import evaluate_embeddings, write_report
from prodlens.errors import BadRecords
from tests.helpers import synthetic_embeddings


def test_report_has_tables_plots_and_skipped_records(tmp_path):
    emb = synthetic_embeddings(np.random.default_rng(0), n_products=6)
    emb.bad = BadRecords()
    emb.bad.add("live/broken", "clip is corrupt", "decode")
    result = evaluate_embeddings(emb, split="val")
    thumb = lambda sid: Image.new("RGB", (32, 32), (200, 10, 10))  # noqa: E731
    report = write_report(result, tmp_path / "rep", emb, thumbnail=thumb)
    text = report.read_text()
    assert "| L2P (live2page) |" in text and "one-shot classification" in text
    assert "`live/broken`: clip is corrupt" in text
    for png in ["recall_at_k.png", "examples_live2page.png", "examples_page2video.png"]:
        img = Image.open(tmp_path / "rep" / png)
        assert img.size[0] > 200 and f"({png})" in text
