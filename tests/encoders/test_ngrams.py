"""The read-text vector: what OCR misreads by a letter, or prints in another language's letters, still matches."""
import numpy as np

from prodlens.encoders import CharNgramEncoder, fold


def test_a_misread_or_accented_word_matches_its_printed_form_more_than_another_word():
    enc = CharNgramEncoder()
    printed, misread, accented, other = enc.encode(["Mellanmjölk Arla", "MELLANMUOLK Arlo", "MELLANMJOLK ARLA",
                                                    "Tropicana Pressed Apple"])
    assert float(printed @ accented) > 0.99  # case and accents folded
    assert float(printed @ misread) > 0.5 > float(printed @ other) + 0.3
    assert fold("ÄPPLE Crème") == "apple creme"


def test_vectors_are_unit_or_zero_and_depend_only_on_the_text():
    enc = CharNgramEncoder(dim=256)
    out = enc.encode(["BRAVO juice", "", "x !! 7", "BRAVO juice"])
    assert out.shape == (4, 256) and out.dtype == np.float32
    assert np.isclose(np.linalg.norm(out[0]), 1.0) and np.array_equal(out[0], out[3])
    assert not out[1].any() and not out[2].any()  # no word of two characters or more: nothing read
    assert np.array_equal(CharNgramEncoder(dim=256).encode(["BRAVO juice"])[0], out[0])
