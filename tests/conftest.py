"""Shared fixtures: real media files the tests write themselves, and the shared reference data when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import shared_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def grocery_root() -> Path:
    return shared_dataset("grocery-store")


@pytest.fixture(scope="session")
def embedder():
    """One embedder with real pretrained encoders for the whole session (loading them takes seconds)."""
    from prodlens.embed import EmbedConfig, FeatureCache, ProductEmbedder

    return ProductEmbedder(EmbedConfig(frames=4, batch_size=16), FeatureCache(None))


