"""`t2igan export`: a pretrained model in another format (ONNX) for use outside PyTorch."""

from __future__ import annotations

import click

from t2igan.sampling.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET


@click.command("export")
@click.argument("model")
@click.option(
    "--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True, help="What to export to."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option(
    "--opset", type=click.IntRange(MIN_OPSET, MAX_OPSET), default=DEFAULT_OPSET, show_default=True, help="ONNX opset."
)
@click.option("--ca-mean", is_flag=True, help="StackGAN: export with the CA mean ĉ = μ (no ε inputs).")
@click.option("--overwrite", is_flag=True, help="Replace --out even if it is not an earlier ONNX export.")
def export(model: str, fmt: str, out: str, opset: int, ca_mean: bool, overwrite: bool) -> None:
    """Export MODEL (a run or pretrained folder) to ONNX: the generator and the char-CNN-RNN text encoder.

    \b
    Examples:
      t2igan export runs/demo --format onnx --out runs/demo_onnx
      python examples/onnx_sample.py runs/demo_onnx "this flower has pink petals" --out pink.png
    Writes generator.onnx (inputs z, text_emb and, for StackGAN, the CA noise eps_k), text_encoder.onnx (character
    indices → embedding) with text_encoder.json (the tokenisation), and onnx_model.json. Batch axis dynamic; every
    graph is checked against PyTorch in onnxruntime before the folder is written. Needs pip install 't2igan[onnx]'.
    """
    from t2igan.sampling.onnx_export import export_onnx

    info = export_onnx(model, out, opset=opset, ca_mean=ca_mean, overwrite=overwrite)
    gen, te = info["generator"], info["text_encoder"]
    click.echo(
        f"generator.onnx: {gen['class']}, inputs {', '.join(gen['inputs'])} → {', '.join(gen['outputs'])} "
        f"(max |onnxruntime − torch| {gen['max_abs_diff_vs_torch']:.1e})"
    )
    if te["file"]:
        click.echo(f"text_encoder.onnx: char-CNN-RNN (max |onnxruntime − torch| {te['max_abs_diff_vs_torch']:.1e})")
    else:
        click.echo(f"text encoder ({te['type']}): {te['note']}")
    click.echo(f"wrote {fmt.upper()} export (opset {opset}): {out}")
