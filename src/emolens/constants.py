"""Facts about the data every part of emolens agrees on."""

# FER2013's seven expressions, in the alphabetical order of its common folder layout (train/<class>/).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# The FER2013 CSV numbers its classes in another order: emotion = index into this tuple.
FER2013_CSV_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Every image becomes a square grayscale picture of this many pixels a side before anything else sees it.
IMAGE_SIZE: int = 48

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)
