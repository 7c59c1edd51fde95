"""The LLM as a judge (`judge:<llm>`): it chooses the product among the evidence's candidates and writes nothing."""
import pytest

from prodlens.embed import FeatureCache
from prodlens.text import Summarizer
from tests.helpers import importable, require

TWO_PRODUCTS = ("hi guys welcome back. today i show you the cartier gold necklace, eighteen carat. "
                "and this is the lunara silk pillowcase, so smooth. the lunara pillowcase comes in six colours. "
                "the pillowcase is washable. see you tomorrow")


@pytest.mark.slow
def test_the_judge_picks_a_candidate_and_the_summary_is_the_extracted_one():
    require(importable("llama_cpp"), "llama-cpp-python", "`make test-setup` builds it")
    judged = Summarizer("judge:qwen2.5-0.5b", FeatureCache(None))
    plain = Summarizer("extractive", FeatureCache(None))
    job = judged._prepare(TWO_PRODUCTS, "", "clip")
    names = [c.name for c in job.identity.choices]
    assert len(names) >= 2, names  # something to judge
    facts = judged.summarize(TWO_PRODUCTS).facts
    reference = plain.summarize(TWO_PRODUCTS).facts
    assert facts.product_name in names
    assert facts.summary == reference.summary and facts.attributes == reference.attributes
    assert judged.model_key.startswith("judge:qwen2.5-0.5b|") and "prompt=judge-" in judged.model_key
    assert judged.model_key != plain.model_key
