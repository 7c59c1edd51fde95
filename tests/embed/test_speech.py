"""AMPere's ablation on real speech: live clips that all look the same, told apart only by what the host says."""
import pytest

from prodlens import api
from prodlens.asr import Transcriber, transcribe_catalog
from prodlens.catalog import load_folder
from prodlens.embed import EmbedConfig, FeatureCache
from tests.helpers import RAINBOW, solid_image, speak, write_video

PRODUCTS = {
    "shampoo": ("Lumo organic shampoo", "hi everyone welcome back. this is the lumo organic shampoo, it smells like "
                                        "green apple. please follow me"),
    "coffee": ("Bean Bros dark roast coffee", "good evening friends. tonight the bean bros dark roast coffee, one "
                                              "kilo of whole beans. thank you for watching"),
    "serum": ("Glow Lab vitamin C serum", "hello hello. look at this glow lab vitamin c serum for your face. like "
                                          "and subscribe"),
    "chips": ("Crunchy sea salt potato chips", "hey guys. snack time with crunchy sea salt potato chips, a family "
                                               "bag. see you tomorrow"),
}


@pytest.fixture(scope="module")
def speech_catalogue(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech") / "cat"
    for i, (pid, (title, pitch)) in enumerate(PRODUCTS.items()):
        (root / "page" / pid).mkdir(parents=True)
        solid_image(RAINBOW[i], (96, 96)).save(root / "page" / pid / "main.jpg")
        (root / "page" / pid / "main.txt").write_text(f"{title}. {title} for sale.")
        (root / "live" / pid).mkdir(parents=True)
        audio, rate = speak(pitch, root.parent / f"{pid}.wav")
        write_video(root / "live" / pid / "l0.mp4", [(128, 128, 128)] * 6, audio=audio, audio_rate=rate)
    cache = FeatureCache(root.parent / "cache")
    catalog, _, bad = transcribe_catalog(load_folder(root), Transcriber(cache=cache), progress=False)
    assert not len(bad)
    return catalog, cache


def test_speech_tells_identical_looking_clips_apart(speech_catalogue):
    catalog, cache = speech_catalogue
    result = api.evaluate_catalog("folder", catalog.root, catalog=catalog, cache=cache, variants=api.SPEECH_VARIANTS,
                                  config=EmbedConfig(speech="raw"), progress=False)
    r1 = {name: v.metrics()["live2page"]["R@1"] for name, v in result.variants.items()}
    assert set(r1) == {"speech=none", "speech=raw", "speech=gated", "speech=anchored", "speech=summary"}
    assert r1["speech=raw"] >= 0.75 and r1["speech=summary"] >= 0.75 and r1["speech=gated"] >= 0.75, r1
    assert r1["speech=none"] <= 0.5, r1  # the frames are identical: without speech it is guesswork
    assert "speech=summary(extractive)" in result.variants["speech=summary"].model
