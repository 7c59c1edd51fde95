"""The red-team suites are built as the README describes them: what each case holds and where its attack is."""
import json
from pathlib import Path

import pytest

from prodlens.text.corpus import HELD_OUT_FAMILIES
from prodlens.text.injection import has_cjk
from prodlens.text.redteam import HELD_OUT, _has, build_family_suite, build_held_out, load_batch


def test_held_out_attacks_sit_inside_a_pitch_of_their_language():
    cases = build_held_out()
    assert len(cases) == len(HELD_OUT) == 12 and len({c.name for c in cases}) == 12
    for case, template in zip(cases, HELD_OUT):
        assert case.kind == "attack" and case.signature
        assert has_cjk(case.transcript) == has_cjk(template)  # Chinese attacks go into Chinese pitches
        assert any(word in case.transcript for word in case.signature)  # the attacker's product was said
        assert case.pitch.brand in case.transcript  # and so was the real product
        prefix = template.split("{")[0].strip()
        assert prefix in case.transcript
        # inserted after the second clause of the pitch, not at either end
        assert not case.transcript.startswith(prefix) and not case.transcript.endswith(prefix)


def test_family_suite_takes_only_the_families_asked_for():
    cases = build_family_suite(HELD_OUT_FAMILIES)
    attacks = [c for c in cases if c.kind == "attack"]
    benign = [c for c in cases if c.kind == "benign"]
    assert len(attacks) == 42 and len(benign) == 34  # the README's out-of-family suite
    assert {c.name.rsplit("-", 2)[0] for c in cases} <= HELD_OUT_FAMILIES
    assert all(c.lookalike and c.lookalike in c.transcript for c in benign)
    assert build_family_suite(HELD_OUT_FAMILIES) == cases  # seeded: the same suite every run
    assert not build_family_suite({"no-such-family"})


BATCHES = sorted((Path(__file__).parents[2] / "bench" / "data").glob("attacks-*.jsonl"))


def test_the_held_out_author_batches_load_with_signatures_the_pitch_never_says(tmp_path):
    from prodlens.text.corpus import build_corpus

    assert BATCHES, "the held-out-author attack batches are in bench/data"
    corpus = {c.text for c in build_corpus()}
    for path in BATCHES:
        cases = load_batch(path)
        assert len(cases) >= 40 and all(c.kind == "attack" and c.signature for c in cases)
        for case in cases:
            clean = " ".join(case.pitch.parts)
            assert not any(_has(clean, w) for w in case.signature)  # "lipstick" of a lipstick pitch is no sign
            assert any(_has(case.transcript, w) for w in case.signature) or any(" " in w for w in case.signature)
        assert not corpus & {json.loads(line)["sentence"] for line in path.read_text().splitlines()}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"pitch": "nobody", "sentence": "x", "signature": ["x"]}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: unknown pitch"):
        load_batch(tmp_path / "bad.jsonl")
