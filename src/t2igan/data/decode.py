"""Decode one image file into a square uint8 RGB array, whatever its mode, and read caption files.

Handles grayscale, palette, RGBA/LA (composited on white), CMYK, 16-bit and float images and EXIF orientation;
a corrupt or truncated file becomes a one-line `T2IError` naming it. At most `MAX_DECODE_PIXELS` pixels are decoded
per image (checked from the header, before decoding; a JPEG counts at the reduced size it is decoded at): larger
images and decompression bombs are refused by name (skipped with ``--skip-bad``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from t2igan.utils.errors import T2IError

Box = tuple[float, float, float, float]  # x, y, w, h in pixels (CUB bounding_boxes.txt)

# 64 M pixels (8192²): a 48-megapixel photo decodes (~200 MB as RGB), a 12000² PNG (1.2 GB with its threads' peers)
# does not. Datasets of the papers are < 1 M pixels per image.
MAX_DECODE_PIXELS = 2**26


def check_pixels(im: Image.Image, path: str | Path, limit: int = MAX_DECODE_PIXELS) -> None:
    """A one-line `T2IError` when ``im`` (opened, not yet decoded) has more than ``limit`` pixels."""
    w, h = im.size
    if w * h > limit:
        raise T2IError(
            f"image is {w}×{h} = {w * h:,} pixels, more than the {limit:,} decoded per image",
            path=path,
            hint="shrink it (e.g. to 4096 px on the long side) or pass --skip-bad",
        )


def load_square(path: str | Path, box: Box | None = None, target: int | None = None) -> Image.Image:
    """Decode ``path`` and cut its square (`crop_square`). With ``target`` (the largest output side), JPEGs are
    decoded at a reduced DCT scale that still leaves ≥ 2 × target pixels across the square — several times faster
    on full-size photos, with no visible loss after the antialiased resize."""
    return crop_square(*load_rgb(path, box, target))


def load_rgb(path: str | Path, box: Box | None = None, target: int | None = None) -> tuple[Image.Image, Box | None]:
    """Open ``path`` fully (not lazily) as RGB; returns the image and ``box`` in its (possibly reduced) pixels."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            if target and im.format == "JPEG":
                w, h = im.size
                left, _, right, _ = square_crop_box(w, h, box)
                scale = 2.0 * target / max(1, right - left)
                if scale < 0.5:
                    im.draft(im.mode, (math.ceil(w * scale), math.ceil(h * scale)))
                    if box is not None and im.size != (w, h):
                        f = im.size[0] / w
                        box = (box[0] * f, box[1] * f, box[2] * f, box[3] * f)
            check_pixels(im, path)
            im.load()
            im = ImageOps.exif_transpose(im) or im
            return to_rgb(im), box
    except Image.DecompressionBombError as e:
        raise T2IError(
            f"refusing a decompression bomb ({str(e).split(',')[0]})",
            path=path,
            hint="remove the file or pass --skip-bad",
        ) from None
    except FileNotFoundError:
        raise T2IError("image file not found", path=path, hint="check the dataset folder or use --skip-bad") from None
    except UnidentifiedImageError:
        raise T2IError(
            "not a readable image (corrupt or unknown format)",
            path=path,
            hint="re-download or delete it, or pass --skip-bad",
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise T2IError(
            f"cannot decode image ({e})",
            path=path,
            hint="the file is truncated or damaged; re-download it or pass --skip-bad",
        ) from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha composited over white, 16-bit scaled down)."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        if im.mode == "F" and a.max(initial=0) <= 1.0:
            hi = 1.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV …


def square_crop_box(width: int, height: int, box: Box | None = None, margin: float = 1.5) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square to cut.

    Without ``box``: the centred square of side min(w, h). With a bounding box (CUB): a square of side
    ``margin × max(bw, bh)`` centred on the box, capped at max(w, h) and shifted to stay inside the image where it
    fits (parts that still fall outside are padded by `crop_square`).
    """
    if box is None:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side
    x, y, bw, bh = box
    side = max(1, round(min(margin * max(bw, bh), max(width, height))))
    cx, cy = x + bw / 2.0, y + bh / 2.0
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    left = _shift_inside(left, side, width)
    top = _shift_inside(top, side, height)
    return left, top, left + side, top + side


def _shift_inside(start: int, side: int, limit: int) -> int:
    if side >= limit:
        return (limit - side) // 2  # centred; both ends padded
    return min(max(start, 0), limit - side)


def crop_square(im: Image.Image, box: Box | None = None) -> Image.Image:
    """Cut the square from `square_crop_box`, padding with the image's mean colour where it leaves the image."""
    w, h = im.size
    left, top, right, bottom = square_crop_box(w, h, box)
    if left >= 0 and top >= 0 and right <= w and bottom <= h:
        return im.crop((left, top, right, bottom))
    mean = tuple(int(v) for v in np.asarray(im).reshape(-1, 3).mean(0))
    canvas = Image.new("RGB", (right - left, bottom - top), mean)
    canvas.paste(im, (-left, -top))
    return canvas


def resize_square(im: Image.Image, size: int) -> np.ndarray:
    """uint8 ``[size, size, 3]`` (bicubic, antialiased when shrinking); ``im`` must already be square."""
    if im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8)


def read_caption_file(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a UTF-8 caption file; problems become a `T2IError` naming the file."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a directory, or a FIFO that would block the read forever
        raise T2IError("caption file is not a regular file", path=path, hint="fix or remove it, or pass --skip-bad")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise T2IError(
            "caption file not found",
            path=path,
            hint="every image needs text_c10/<class>/<image>.txt, or pass --skip-bad",
        ) from None
    except OSError as e:
        raise T2IError(
            f"cannot read caption file ({e.strerror or e})", path=path, hint="fix or remove it, or pass --skip-bad"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise T2IError(
            f"caption file is not UTF-8 (byte {e.start})",
            path=path,
            hint="re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass --skip-bad",
        ) from None
    return clean_captions(text.splitlines(), path)


def clean_captions(captions: list[str], path: str | Path) -> list[str]:
    out = [" ".join(c.split()) for c in captions if c and c.strip()]
    if not out:
        raise T2IError("empty caption (no text)", path=path, hint="write at least one caption line, or pass --skip-bad")
    return out
