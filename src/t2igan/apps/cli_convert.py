"""`t2igan convert …`: the authors' StackGAN / StackGAN-v2 checkpoints → a pretrained folder."""

from __future__ import annotations

from pathlib import Path

import click

_NETD = click.option(
    "--netd",
    "netd",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Also convert the discriminator file(s) (for `t2igan train --set model.init=OUT`).",
)
_OUT = click.option("--out", required=True, type=click.Path(path_type=Path), help="New pretrained folder to write.")


@click.group("convert")
def convert() -> None:
    """Convert official checkpoints (read with torch.load(weights_only=True); nothing in them runs).

    \b
    Examples:
      t2igan convert stackgan netG_epoch_600.pth --out models/stackgan_birds
      t2igan convert stackgan-v2 netG_210000.pth --out models/stackganpp_birds --netd netD0.pth --netd netD1.pth \\
          --netd netD2.pth
    \b
    Sampling (no text encoder: pass the release's char-CNN-RNN embeddings), with CA noise off as the release's
    generator gives for the same embedding and z:
      pipe = T2IPipeline.from_pretrained("models/stackgan_birds"); pipe.generator.use_ca_mean = True
      pipe(text_embeddings=E, latents=Z, output_type="pt", denormalize=False)
    """


@convert.command("stackgan")
@click.argument("netg", type=click.Path(path_type=Path))
@_OUT
@_NETD
def stackgan(netg: Path, out: Path, netd: tuple[Path, ...]) -> None:
    """StackGAN-Pytorch STAGE1_G or STAGE2_G state dict (the stage is told from its keys; --netd: STAGE*_D)."""
    _run("stackgan", netg, out, netd)


@convert.command("stackgan-v2")
@click.argument("netg", type=click.Path(path_type=Path))
@_OUT
@_NETD
def stackgan_v2(netg: Path, out: Path, netd: tuple[Path, ...]) -> None:
    """StackGAN-v2 G_NET state dict, 1–3 branches, with or without DataParallel's `module.` prefix
    (--netd: netD0.pth, netD1.pth, … coarse → fine)."""
    _run("stackgan-v2", netg, out, netd)


def _run(source: str, netg: Path, out: Path, netd: tuple[Path, ...]) -> None:
    from t2igan.training.convert import convert_official
    from t2igan.training.export import load_generator

    folder = convert_official(source, netg, out, netd=list(netd))
    g = load_generator(folder)
    sizes = " → ".join(str(s) for s in g.image_sizes)
    d = f" and {len(netd)} discriminator file(s)" if netd else ""
    click.echo(f"converted {netg.name}{d}: {type(g).__name__} {sizes} px, {g.text_dim}-d text, z {g.z_dim} → {folder}")
