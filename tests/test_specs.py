import pytest

from prodlens.specs import ModelSpec, parse_spec


def test_one_spec_syntax_for_every_model_choice():
    assert parse_spec("minilm") == ModelSpec("", "minilm", None)
    assert parse_spec("hf:org/repo::model.gguf") == ModelSpec("hf", "org/repo", "model.gguf")
    assert parse_spec("llm:gemma3-270m") == ModelSpec("llm", "gemma3-270m", None)
    assert parse_spec("http://127.0.0.1:8000/v1::qwen") == ModelSpec("http", "http://127.0.0.1:8000/v1", "qwen")
    assert parse_spec("embeddings:/data/products.parquet").target == "/data/products.parquet"
    # an unknown prefix is not a scheme: the whole spec is a name or a path
    assert parse_spec("C:/models/x") == ModelSpec("", "C:/models/x", None)


def test_set_assignments_are_one_grammar_for_every_config():
    from prodlens.specs import parse_assignments

    assert parse_assignments(["train.lr=3e-4", "model.visual.layers=2", "dim=128", "loss=sampled",
                              "model.visual.heads=4"]) == {"train": {"lr": 0.0003}, "dim": 128, "loss": "sampled",
                                                          "model": {"visual": {"layers": 2, "heads": 4}}}
    assert parse_assignments(['names=["a", "b"]', "flag=true", "none=null"]) == {"names": ["a", "b"], "flag": True,
                                                                                 "none": None}
    for bad in (["lr"], ["=3"], ["train..lr=1"], ["train=1", "train.lr=2"]):
        with pytest.raises(ValueError, match="--set"):
            parse_assignments(bad)
