"""Facts about the data every part of emolens agrees on."""

# FER2013's seven expressions, in the alphabetical order of its common folder layout (train/<class>/).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# The FER2013 CSV numbers its classes in another order: emotion = index into this tuple.
FER2013_CSV_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Every image becomes a square grayscale picture of this many pixels a side before anything else sees it.
IMAGE_SIZE: int = 48

# Test-time augmentation: "flip" averages each face's probabilities with its mirror image's; "crops" (for models
# trained on crops) averages ten views: the centre and four corner crops, and their mirrors.
TTA_MODES: tuple[str, ...] = ("none", "flip", "crops")

# `emolens data inspect`: Hamming distance at or under which two 64-bit pHashes are near duplicates. On the
# shared FER2013 copy, most train/test pairs found at 4 are the same photo, confirmed pixel by pixel (README).
NEAR_THRESHOLD: int = 4
# Beyond this the 64 bits split into blocks so narrow that nearly every pair becomes a candidate to compare.
MAX_NEAR_THRESHOLD: int = 12
# ... and the standard deviation, in gray levels, under which an image is near-constant: on FER2013 this
# catches a flat gray square, a black square with one speck and a white page of faint text, and no face.
NEAR_CONSTANT_STD: float = 5.0

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)

# One colour per expression, shared by annotated photos and timeline plots so the two read alike.
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#2ca02c",
    "neutral": "#7f7f7f",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
    # FER+'s eighth expression.
    "contempt": "#6b8e23",
}
# For class names outside FER2013's seven (a user's own dataset), by class index.
FALLBACK_COLORS: tuple[str, ...] = ("#17becf", "#bcbd22", "#e377c2", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896")


def emotion_color(name: str, index: int) -> str:
    """The hex colour for class `name` (at `index` in the model's class list)."""
    return EMOTION_COLORS.get(name, FALLBACK_COLORS[index % len(FALLBACK_COLORS)])
