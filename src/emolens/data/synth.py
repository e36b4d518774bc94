"""Procedural cartoon faces with FER2013's seven expressions, for tests and demos without real data.

Each image is a grayscale cartoon face whose brows, eyes and mouth follow one expression, plus random
nuisance (pose, scale, lighting, noise, per-feature jitter) so that a model has to learn the expression
rather than memorise pixels. `synthesize_dataset` writes the same folder layout as FER2013's image
release (`train/<class>/*.png`, `test/<class>/*.png`), so every loader in emolens can read it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from emolens.constants import FER2013_CLASSES, IMAGE_SIZE

# Drawing at a multiple of the final size and shrinking with a filter gives smooth, antialiased strokes.
_SUPERSAMPLE = 3
# Face half-height as a fraction of the image side; features are laid out in units of it.
_FACE_RADIUS = 0.40
_FACE_ASPECT = 0.78  # half-width / half-height


@dataclasses.dataclass(frozen=True)
class _Expression:
    """How one expression moves the features, in face units (face half-height = 1, y points down)."""

    mouth_curve: float = 0.0  # how far both corners rise above the middle (negative: frown)
    mouth_open: float = 0.0  # gap between the lips at the middle
    mouth_width: float = 1.0  # relative to a neutral mouth
    mouth_sneer: float = 0.0  # how far one corner alone rises
    brow_raise: float = 0.0  # brows above (positive) or below their neutral height
    brow_slant: float = 0.0  # how much lower the inner ends sit than the outer ends
    brow_pull: float = 0.0  # inner ends drawn towards the nose
    eye_open: float = 1.0  # eye height relative to a neutral eye
    nose_wrinkle: bool = False


# Plain data rather than branches: tweaking an expression means changing numbers here.
_EXPRESSIONS: dict[str, _Expression] = {
    "angry": _Expression(
        mouth_curve=-0.03, mouth_width=0.75, brow_raise=-0.08, brow_slant=0.14, brow_pull=0.06, eye_open=0.5
    ),
    "disgust": _Expression(
        mouth_curve=-0.03,
        mouth_width=0.9,
        mouth_sneer=0.22,
        brow_raise=-0.05,
        brow_slant=0.05,
        eye_open=0.65,
        nose_wrinkle=True,
    ),
    "fear": _Expression(
        mouth_curve=-0.05,
        mouth_open=0.12,
        mouth_width=1.25,
        brow_raise=0.10,
        brow_slant=-0.10,
        brow_pull=0.07,
        eye_open=1.5,
    ),
    "happy": _Expression(mouth_curve=0.20, mouth_open=0.04, mouth_width=1.2, brow_raise=0.03, eye_open=0.85),
    "neutral": _Expression(),
    "sad": _Expression(mouth_curve=-0.15, mouth_width=0.9, brow_raise=0.02, brow_slant=-0.11, eye_open=0.8),
    "surprise": _Expression(mouth_open=0.38, mouth_width=0.5, brow_raise=0.15, eye_open=1.65),
}

# Standard deviation of the per-image jitter of each numeric field, so no two faces of a class match.
_JITTER = _Expression(
    mouth_curve=0.03,
    mouth_open=0.025,
    mouth_width=0.08,
    mouth_sneer=0.02,
    brow_raise=0.03,
    brow_slant=0.03,
    brow_pull=0.02,
    eye_open=0.12,
)


def _jittered(expression: _Expression, rng: np.random.Generator) -> _Expression:
    changes = {}
    for field in dataclasses.fields(_Expression):
        if field.type in ("float", float):
            value = getattr(expression, field.name) + rng.normal(0.0, getattr(_JITTER, field.name))
            changes[field.name] = max(value, 0.0) if field.name in ("mouth_open", "mouth_sneer") else value
    return dataclasses.replace(expression, **changes)


@dataclasses.dataclass
class _Sketch:
    """A supersampled canvas with the face's coordinate frame: (0, 0) is the face's centre and 1 its radius."""

    draw: ImageDraw.ImageDraw
    center: float
    radius: float
    ink: int

    def px(self, x: float, y: float) -> tuple[float, float]:
        return (self.center + x * self.radius, self.center + y * self.radius)

    def stroke(self, width: float) -> int:
        return max(1, round(width * self.radius))

    def line(self, points: list[tuple[float, float]], width: float, joint: str | None = None) -> None:
        self.draw.line([self.px(x, y) for x, y in points], fill=self.ink, width=self.stroke(width), joint=joint)


def _draw_eyes(sketch: _Sketch, expr: _Expression, rng: np.random.Generator) -> tuple[float, float]:
    """White ellipses with a dark pupil; height follows eye_open, so narrowed eyes become slits. Returns
    where they are (the brows sit above them)."""
    eye_x, eye_y = 0.32 + rng.normal(0, 0.02), -0.12 + rng.normal(0, 0.03)
    eye_rx, eye_ry = 0.15, 0.11 * max(expr.eye_open, 0.2)
    gaze = rng.normal(0, 0.03)
    for side in (-1, 1):
        ex = side * eye_x
        sketch.draw.ellipse(
            [sketch.px(ex - eye_rx, eye_y - eye_ry), sketch.px(ex + eye_rx, eye_y + eye_ry)],
            fill=int(rng.uniform(200, 255)),
            outline=sketch.ink,
            width=sketch.stroke(0.035),
        )
        pupil = min(0.065, eye_ry)
        sketch.draw.ellipse(
            [sketch.px(ex + gaze - pupil, eye_y - pupil), sketch.px(ex + gaze + pupil, eye_y + pupil)], fill=sketch.ink
        )
    return eye_x, eye_y


def _draw_brows_and_nose(
    sketch: _Sketch, expr: _Expression, eye_x: float, eye_y: float, rng: np.random.Generator
) -> None:
    """Brows: a thick segment whose inner end moves with slant and pull. Nose: a short hook; disgust adds
    wrinkle lines either side of the bridge."""
    brow_y = eye_y - 0.25 - expr.brow_raise
    for side in (-1, 1):
        inner = (side * (eye_x - 0.17 + expr.brow_pull), brow_y + expr.brow_slant / 2)
        outer = (side * (eye_x + 0.17), brow_y - expr.brow_slant / 2)
        sketch.line([inner, outer], 0.09)
    if rng.random() < 0.8:
        sketch.line([(0, 0.0), (0.03, 0.17), (-0.06, 0.2)], 0.035)
    if expr.nose_wrinkle:
        for side in (-1, 1):
            for dy in (-0.02, 0.06):
                sketch.line([(side * 0.08, dy), (side * 0.18, dy + 0.05)], 0.03)


def _draw_mouth(sketch: _Sketch, expr: _Expression, rng: np.random.Generator) -> None:
    """A curve through both corners; when open, a dark lens between an upper and a lower lip."""
    mouth_y, mouth_half = 0.47 + rng.normal(0, 0.03), 0.3 * max(expr.mouth_width, 0.3)
    sneer_side = rng.choice((-1, 1))  # which corner rises is not part of the expression
    u = np.linspace(-1, 1, 21)
    mid = mouth_y - expr.mouth_curve * u**2 - expr.mouth_sneer * np.maximum(sneer_side * u, 0) ** 2
    if expr.mouth_open > 0.02:
        gap = expr.mouth_open / 2 * np.sqrt(1 - u**2)
        outline = [sketch.px(x * mouth_half, y) for x, y in zip(u, mid - gap, strict=True)]
        outline += [sketch.px(x * mouth_half, y) for x, y in zip(u[::-1], (mid + gap)[::-1], strict=True)]
        sketch.draw.polygon(outline, fill=sketch.ink, outline=sketch.ink)
    sketch.line([(x * mouth_half, y) for x, y in zip(u, mid, strict=True)], 0.07, joint="curve")


def _photograph(image: Image.Image, background: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """The drawn face as a camera would give it: posed (rotated and shifted in one resampling, the fill
    matching the still-uniform background), shrunk to `size`, then contrast and brightness, a linear lighting
    gradient in a random direction, and sensor noise."""
    shift = rng.uniform(-3, 3, size=2) * _SUPERSAMPLE
    image = image.rotate(
        rng.uniform(-12, 12),
        resample=Image.Resampling.BILINEAR,
        translate=(float(shift[0]), float(shift[1])),  # type: ignore[arg-type]  # Pillow types it int, uses floats as is
        fillcolor=int(background),
    )
    pixels = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    pixels = (pixels - 128) * rng.uniform(0.7, 1.2) + 128 + rng.uniform(-30, 30)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    pixels *= 1 + rng.uniform(0, 0.35) * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None])
    pixels += rng.normal(0, rng.uniform(2, 8), size=pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def draw_face(emotion: str, rng: np.random.Generator, *, size: int = IMAGE_SIZE) -> np.ndarray:
    """Draws one random cartoon face showing an expression.

    Args:
        emotion: One of `FER2013_CLASSES`.
        rng: Source of all randomness, so a seeded generator gives a reproducible face.
        size: Side of the square output image in pixels.

    Returns:
        A `(size, size)` uint8 grayscale image.
    """
    if emotion not in _EXPRESSIONS:
        raise ValueError(f"Expected emotion to be one of {FER2013_CLASSES}. Received: emotion={emotion!r}")
    if size < 8:
        raise ValueError(f"Expected size to be at least 8 pixels. Received: size={size}")
    expr = _jittered(_EXPRESSIONS[emotion], rng)
    canvas = size * _SUPERSAMPLE
    skin = rng.uniform(140, 225)
    background = rng.uniform(10, 250)
    while abs(background - skin) < 35:  # keep the face outline visible
        background = rng.uniform(10, 250)
    ink = int(rng.uniform(10, 70))
    image = Image.new("L", (canvas, canvas), int(background))
    sketch = _Sketch(ImageDraw.Draw(image), canvas / 2, canvas * _FACE_RADIUS * rng.uniform(0.9, 1.1), ink)
    half_width = _FACE_ASPECT * rng.uniform(0.95, 1.05)
    head = [sketch.px(-half_width, -1), sketch.px(half_width, 1)]
    sketch.draw.ellipse(head, fill=int(skin), outline=ink, width=sketch.stroke(0.04))
    if rng.random() < 0.5:  # hair: large, expression-free pixel mass that varies between images
        sketch.draw.chord(head, 180 + 45, 360 - 45, fill=int(rng.uniform(15, 120)))
    eye_x, eye_y = _draw_eyes(sketch, expr, rng)
    _draw_brows_and_nose(sketch, expr, eye_x, eye_y, rng)
    _draw_mouth(sketch, expr, rng)
    return _photograph(image, background, size, rng)


def _check_whole(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Expected {name} to be a whole number >= {minimum}. Received: {name}={value!r}")


def synthesize_dataset(
    out_dir: str | os.PathLike, *, train_per_class: int = 200, test_per_class: int = 50, seed: int = 0
) -> Path:
    """Writes a FER2013-layout folder of synthetic faces.

    Images go to `out_dir/train/<class>/<class>_00000.png` and `out_dir/test/<class>/...`. The same seed
    always gives byte-identical files; each split and class draws from its own stream, so changing one
    count does not change the images of the other split.

    Args:
        out_dir: Folder to write into; created if missing. It must not already hold `train/` or `test/`.
        train_per_class: Number of training images per class.
        test_per_class: Number of test images per class.
        seed: Non-negative seed for every random choice.

    Returns:
        `out_dir` as a `Path`.
    """
    _check_whole("train_per_class", train_per_class, 1)
    _check_whole("test_per_class", test_per_class, 1)
    _check_whole("seed", seed, 0)  # numpy seeds must be non-negative
    out_dir = Path(out_dir)
    splits = {"train": train_per_class, "test": test_per_class}
    existing = [name for name in splits if (out_dir / name).exists()]
    if existing:
        raise FileExistsError(
            f"{out_dir} already contains {', '.join(existing)}/; synthesize_dataset never overwrites or mixes "
            "datasets. Pick an empty or new folder."
        )
    for split_index, (split, count) in enumerate(splits.items()):
        (out_dir / split).mkdir(parents=True)  # exist_ok=False: a folder that appeared meanwhile still fails
        for class_index, emotion in enumerate(FER2013_CLASSES):
            class_dir = out_dir / split / emotion
            class_dir.mkdir()
            rng = np.random.default_rng([seed, split_index, class_index])
            for i in range(count):
                Image.fromarray(draw_face(emotion, rng)).save(class_dir / f"{emotion}_{i:05d}.png")
    return out_dir
