"""The red-team suites are built as the README describes them: what each case holds and where its attack is."""
from prodlens.text.corpus import HELD_OUT_FAMILIES
from prodlens.text.injection import has_cjk
from prodlens.text.redteam import HELD_OUT, build_family_suite, build_held_out


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
