"""The main jobs as plain functions: the CLI and the demo call these, and so can users.

    from prodlens.api import evaluate_catalog
    result = evaluate_catalog("grocery", "path/to/grocery-store", split="val")
"""
from __future__ import annotations

from pathlib import Path


from . import atomic
from .catalog import Catalog, load_catalog
from .errors import ProdlensError
from .cache import FeatureCache, open_cache
from .embed import EmbedConfig, Embeddings
from .embed.saved import MODEL_SUBDIR
from .evaluate import ZERO_SHOT_NOTE, EvalResult, evaluate_embeddings, write_report
from .index.build import thumbnailer
from .index.query import query_model
from .model import embedder_for

PAGE_VARIANTS = {"page=image": {"page_inputs": "image"}, "page=text": {"page_inputs": "text"},
                 "page=image+text": {"page_inputs": "image+text"}}
SPEECH_VARIANTS = {"speech=none": {"speech": "none"}, "speech=raw": {"speech": "raw"},
                   "speech=gated": {"speech": "gated"}, "speech=anchored": {"speech": "anchored"},
                   "speech=summary": {"speech": "summary"}}
OCR_VARIANTS = {"ocr=none": {"ocr": "none"}, "ocr=text": {"ocr": "text"}}


def embed(catalog: Catalog, config: EmbedConfig | None = None, cache: FeatureCache | None = None,
          progress: bool = True, checkpoint: str | Path | None = None) -> Embeddings:
    """Embed every sample: with the trained model of `checkpoint` if given, else zero-shot from `config`."""
    model, _ = embedder_for(config, cache or open_cache(), checkpoint)
    return model.embed_catalog(catalog, progress=progress)


def train_catalog(source: str, root: str | Path, out_dir: str | Path, split: str = "train",
                  val_split: str | None = "val", config: str | Path | None = None, overrides: dict | None = None,
                  cache: FeatureCache | None = None, resume: bool = False, max_steps: int | None = None,
                  progress: bool = True, catalog: Catalog | None = None, features: EmbedConfig | None = None):
    """Train the unified embedding on `split`, validate on `val_split` (if the catalogue has it), write the run."""
    from .model import load_run_config
    from .train import Trainer, write_training_report

    run = load_run_config(config, overrides)
    split = None if split in (None, "", "all") else split
    if catalog is None and source == "manifest":
        # a manifest is streamed into the feature table: the training split is never held as Python objects
        from .catalog import open_manifest

        full = open_manifest(root)
        splits = full.column_values("split")
    else:
        full = catalog or load_catalog(source, root)
        splits = full.splits
    if split and split not in splits:
        raise ProdlensError(f"split {split!r} not in this catalogue (it has: {', '.join(splits) or 'no splits'}); "
                            "use --split all to train on everything")
    train = full.select(split) if split else full
    val = full.select(val_split) if val_split and val_split in splits else None
    if val is not None and not isinstance(val, Catalog):
        val = val.to_catalog()  # validation splits are evaluation-sized
    trainer = Trainer(run, out_dir, cache or open_cache(), features=features, progress=progress)
    result = trainer.fit(train, val, resume=resume, max_steps=max_steps)
    if trainer.rank == 0:
        atomic.write_json(Path(out_dir) / "config.json", trainer.run.to_dict())  # widths resolved
        atomic.write_json(Path(out_dir) / "summary.json", result.summary())
        write_training_report(result, out_dir, title=f"prodlens training: {full.name} {split}")
        if not result.stopped_early:  # the finished model, as a directory that loads without the run
            from .model import CheckpointEmbedder

            CheckpointEmbedder(out_dir).save(Path(out_dir) / MODEL_SUBDIR)
    return result


def evaluate_catalog(source: str, root: str | Path, split: str | None = None, config: EmbedConfig | None = None,
                     cache: FeatureCache | None = None, variants: dict[str, dict] | None = None,
                     report_dir: str | Path | None = None, json_out: str | Path | None = None,
                     progress: bool = True, catalog: Catalog | None = None,
                     checkpoint: str | Path | None = None) -> EvalResult:
    """Load → embed → evaluate; optionally compare embedding `variants` (name → EmbedConfig changes, e.g.
    PAGE_VARIANTS or SPEECH_VARIANTS) on the same samples, and write a report and JSON.
    With `checkpoint` (a run directory or checkpoint file) the trained model embeds; otherwise the zero-shot encoders."""
    catalog = catalog or load_catalog(source, root, split)
    model, features = embedder_for(config, cache or open_cache(), checkpoint)
    embeddings = model.embed_catalog(catalog, progress=progress)
    result = evaluate_embeddings(embeddings, split=split)
    if checkpoint is None:  # variants are embedding settings of the zero-shot encoders
        result.notes.append(ZERO_SHOT_NOTE)
        main_names = []
        for name, changes in (variants or {}).items():
            if all(getattr(model.config, k) == v for k, v in changes.items()):
                main_names.append(name)  # the main configuration is one of the variants
                continue
            other = model.with_config(**changes).embed_catalog(catalog, progress=False)
            result.variants[name] = evaluate_embeddings(other, split=split)
        if result.variants:
            result.variants = {", ".join(main_names) or "main": result, **result.variants}
    if json_out:
        atomic.write_json(json_out, result.to_json())
    if report_dir:
        write_report(result, report_dir, embeddings, thumbnail=thumbnailer(catalog, features),
                     title=f"prodlens evaluation: {catalog.name}")
    return result


# -- index and search ---------------------------------------------------------------------------------------------
def index_catalog(catalog: Catalog, out_dir: str | Path, domains: tuple[str, ...] = ("page",),
                  config: EmbedConfig | None = None, checkpoint: str | Path | None = None,
                  index_config=None, cache: FeatureCache | None = None, thumbnails: bool = True,
                  progress: bool = True, encoder=None):
    """Embed the `domains` samples of a catalogue and write a new index at `out_dir` — vectors, titles, categories,
    thumbnails and lexical texts —, or add them to the index already there (samples indexed before are replaced;
    the model must be the one that built it). The model: `encoder` (a loaded `prodlens.load_encoder()`), else
    `checkpoint` or the zero-shot `config`, else the existing index's own."""
    from .index import ProductIndex
    from .index.build import embed_into

    cache = cache or open_cache()
    existing = ProductIndex.open(out_dir) if (Path(out_dir) / "CURRENT").exists() else None
    if encoder is not None:
        model, features = encoder, encoder.features
    elif existing is not None and config is None and checkpoint is None:
        model, features = query_model(existing.record, cache)
    else:
        model, features = embedder_for(config, cache, checkpoint)
    subset = catalog.select(domains=list(domains))
    if not subset.samples:
        raise ProdlensError(f"the catalogue has no {'/'.join(domains)} samples to index")
    index, added, replaced, bad = embed_into(
        existing, subset, model, features, thumbnails=thumbnails, progress=progress,
        create=lambda embeddings, info: ProductIndex.create(out_dir, embeddings, info, index_config))
    index.save()
    return index, {"added": added, "replaced": replaced, "bad": bad}
