from prodlens.specs import ModelSpec, parse_spec


def test_one_spec_syntax_for_every_model_choice():
    assert parse_spec("minilm") == ModelSpec("", "minilm", None)
    assert parse_spec("hf:org/repo::model.gguf") == ModelSpec("hf", "org/repo", "model.gguf")
    assert parse_spec("llm:gemma3-270m") == ModelSpec("llm", "gemma3-270m", None)
    assert parse_spec("http://127.0.0.1:8000/v1::qwen") == ModelSpec("http", "http://127.0.0.1:8000/v1", "qwen")
    assert parse_spec("embeddings:/data/products.parquet").target == "/data/products.parquet"
    # an unknown prefix is not a scheme: the whole spec is a name or a path
    assert parse_spec("C:/models/x") == ModelSpec("", "C:/models/x", None)
