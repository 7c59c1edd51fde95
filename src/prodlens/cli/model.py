"""`prodlens model ...`: save an encoder as a model directory, read one, convert old pickle checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ProdlensError
from .common import _fail, _model_options, app, console

model_app = typer.Typer(no_args_is_help=True, help="Model directories: save, inspect, convert old checkpoints.")
app.add_typer(model_app, name="model")


@model_app.command("save")
@_model_options
def model_save(source: str = typer.Argument("zero-shot", help="a trained run directory or .safetensors checkpoint, "
                                             "'zero-shot' (the encoder options below), or IMAGE+TEXT encoder specs"),
               out: Path = typer.Option(..., "--out", help="the model directory to write"),
               *, config, cache):
    """Save an encoder as a directory: settings and weight digests in prodlens_model.json, trained weights in
    model.safetensors, a model card; `prodlens.load_encoder(DIR)` and `--checkpoint DIR` load it."""
    from ..embed.saved import read_model_record
    from ..model import load_encoder

    try:
        encoder = load_encoder(config if source == "zero-shot" else source, cache)
        encoder.save(out)
    except ProdlensError as e:
        _fail(str(e))
    record = read_model_record(out)
    console.print(f"saved {encoder.name} to {out} (model id {record['model_id']})", markup=False)


@model_app.command("info")
def model_info(path: Path = typer.Argument(..., help="a model directory")):
    """What a model directory holds: its kind, settings, weight digests and model id."""
    from ..embed.saved import read_model_dir

    try:
        record, tensors = read_model_dir(path)
    except ProdlensError as e:
        _fail(str(e))
    print(json.dumps({**record, "tensors": len(tensors)}, indent=2))


@model_app.command("convert")
def model_convert(path: Path = typer.Argument(..., help="an old .pt checkpoint, or a run directory holding them")):
    """Rewrite checkpoints of earlier releases (torch pickles) as safetensors files beside them, once. They are
    read by torch's restricted loader, which refuses anything but tensors, numbers, text and containers."""
    from ..runs import convert_legacy

    try:
        written = convert_legacy(path)
    except ProdlensError as e:
        _fail(str(e))
    for target in written:
        console.print(f"wrote {target}", markup=False)


export_app = typer.Typer(no_args_is_help=True, help="Export a trained model to other runtimes.")
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx_cmd(model: Path = typer.Argument(..., help="a trained run directory, checkpoint or model directory"),
                    out: Path = typer.Option(..., "--out", help="the .onnx file to write")):
    """The trained image tower and head as one ONNX graph (pixels [+ text vector] → embedding); its
    preprocessing and settings are in the graph's metadata."""
    from ..model import load_encoder
    from ..model.export import export_onnx

    try:
        encoder = load_encoder(model)
        export_onnx(encoder, out)
    except ProdlensError as e:
        _fail(str(e))
    console.print(f"wrote {out} ({encoder.name})", markup=False)
