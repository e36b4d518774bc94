"""A corpus of hostile and broken inputs, generated at test time (nothing large is committed).

Each case must end in a skipped, reported file or a one-line error: never a traceback, a hang or unbounded
memory. Cases that could hang (FIFOs) are released by a writer thread, so a regression fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import CLASSES, bomb_png, class_image, png_bytes, write_tree
from emolens._io import MAX_FILE_BYTES
from emolens.cli import main
from emolens.data import load_dataset
from emolens.errors import EmolensError

BIG = MAX_FILE_BYTES + 1
CASE_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def _nothing_written_outside(tmp_path_factory, monkeypatch):
    """Each case runs in an empty working folder that must stay empty: whatever a case writes goes to the
    output folder it names, never beside it (a default `runs/`, `preview.png` or `<model>-evaluation`)."""
    here = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(here)
    yield
    assert sorted(p.name for p in here.iterdir()) == []


@pytest.fixture(autouse=True)
def _no_hang():
    """Every case fails, rather than hangs, past CASE_TIMEOUT_S (SIGALRM interrupts even a blocked read)."""

    def timed_out(signum, frame):
        raise TimeoutError(f"the case did not end within {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(CASE_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fifo_release() -> Iterator[Callable[[Path], Path]]:
    """Makes FIFOs whose readers, if any, are released (given end of file) instead of waiting for ever."""
    made: list[Path] = []
    stop = threading.Event()

    def release() -> None:
        while not stop.is_set():
            for path in made:
                with contextlib.suppress(OSError):  # opening succeeds only while a reader has the FIFO open
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            time.sleep(0.05)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()

    def make(path: Path) -> Path:
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    stop.set()
    thread.join()


# --- dataset folders ------------------------------------------------------------------------------------------


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 48 48\n0 0 moveto 48 48 lineto stroke\nshowpage\n%%EOF\n"


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as file:  # a hole: no disk used, but stat says `size`
        file.truncate(size)
    return path


FOLDER_CASES: dict[str, tuple[Callable[[Path, Callable], None], str]] = {
    "fifo": (lambda happy, fifo: fifo(happy / "x.jpg"), "FIFO"),
    "symlink to /dev/zero": (lambda happy, fifo: (happy / "x.png").symlink_to("/dev/zero"), "FIFO, device or socket"),
    "symlink to a missing file": (lambda happy, fifo: (happy / "x.png").symlink_to(happy / "gone.png"), "No such file"),
    "symlink loop": (lambda happy, fifo: (happy / "x.png").symlink_to(happy / "x.png"), "symbolic links"),
    "file above the size cap": (lambda happy, fifo: _sparse(happy / "x.png", BIG), "larger than"),
    "empty file": (lambda happy, fifo: (happy / "x.png").write_bytes(b""), "not a readable image"),
    "truncated PNG": (
        lambda happy, fifo: (happy / "x.png").write_bytes(png_bytes(class_image(0, 0))[:40]),
        "not a readable image",
    ),
    "text named .jpg": (lambda happy, fifo: (happy / "x.jpg").write_text("hello"), "not a readable image"),
    "EPS named .jpg (Ghostscript)": (
        lambda happy, fifo: (happy / "x.jpg").write_bytes(EPS),
        "not an image format emolens reads",
    ),
}


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_a_hostile_file_in_a_dataset_folder_is_skipped_and_reported(tmp_path, fifo_release, case):
    root = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    plant, reason = FOLDER_CASES[case]
    plant(root / "train" / "happy", fifo_release)
    dataset = load_dataset(root, cache=False)
    assert dataset.counts()["train"] == {c: 2 for c in CLASSES}
    assert [s.name for s in dataset.skipped] == ["train/happy/" + next((root / "train" / "happy").glob("x.*")).name]
    assert reason in dataset.skipped[0].reason


def test_a_class_folder_that_is_a_symbolic_link_is_read_and_a_folder_loop_is_read_once(tmp_path):
    import shutil

    root = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    elsewhere = write_tree(tmp_path / "elsewhere", {"train": 5})
    shutil.rmtree(root / "train" / "happy")
    (root / "train" / "happy").symlink_to(elsewhere / "train" / "happy", target_is_directory=True)
    (root / "train" / "loop").symlink_to(root, target_is_directory=True)  # back to the top: read once
    dataset = load_dataset(root, cache=False)
    assert dataset.counts()["train"] == {c: 5 if c == "happy" else 2 for c in CLASSES}
    assert [(s.name, "already read" in s.reason) for s in dataset.skipped] == [("train/loop/", True)]


# --- ZIP members ----------------------------------------------------------------------------------------------

GOOD = png_bytes(class_image(1, 0))


def _zip_with(tmp_path: Path, data: bytes = GOOD) -> tuple[Path, zipfile.ZipInfo]:
    """A small two-split dataset ZIP with one extra stored member, and that member's info."""
    tree = write_tree(tmp_path / "tree", {"train": 2, "test": 1})
    archive = tmp_path / "fer.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            z.write(path, path.relative_to(tree).as_posix())
        z.writestr("train/happy/x.png", data)
    with zipfile.ZipFile(archive) as z:
        return archive, z.getinfo("train/happy/x.png")


def _patch(archive: Path, offset: int, value: bytes) -> None:
    with open(archive, "r+b") as file:
        file.seek(offset)
        file.write(value)


def _central_entry(archive: Path, info: zipfile.ZipInfo) -> int:
    """The offset of the member's central-directory record (the one that points at its local header)."""
    data = archive.read_bytes()
    offset = data.index(b"PK\x01\x02")
    while struct.unpack("<I", data[offset + 42 : offset + 46])[0] != info.header_offset:
        offset = data.index(b"PK\x01\x02", offset + 4)
    return offset


def _encrypted_flag(tmp_path: Path) -> Path:
    archive, info = _zip_with(tmp_path)
    _patch(archive, info.header_offset + 6, struct.pack("<H", info.flag_bits | 0x1))
    _patch(archive, _central_entry(archive, info) + 8, struct.pack("<H", info.flag_bits | 0x1))
    return archive


def _bad_crc(tmp_path: Path) -> Path:
    archive, info = _zip_with(tmp_path)
    middle = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size // 2
    _patch(archive, middle, bytes([archive.read_bytes()[middle] ^ 0xFF]))
    return archive


def _unknown_method(tmp_path: Path) -> Path:
    archive, info = _zip_with(tmp_path)
    _patch(archive, info.header_offset + 8, struct.pack("<H", 99))
    _patch(archive, _central_entry(archive, info) + 10, struct.pack("<H", 99))
    return archive


def _declared_huge(tmp_path: Path) -> Path:
    archive, info = _zip_with(tmp_path)
    _patch(archive, _central_entry(archive, info) + 24, struct.pack("<I", 0xFFFF_FFF0))  # uncompressed size
    return archive


def _bad_local_header(tmp_path: Path) -> Path:
    archive, info = _zip_with(tmp_path)
    _patch(archive, info.header_offset, b"XXXX")
    return archive


ZIP_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "bad CRC": (_bad_crc, "damaged or unsupported ZIP member (Bad CRC-32"),
    "encrypted flag": (_encrypted_flag, "damaged or unsupported ZIP member (File "),
    "unknown compression method": (
        _unknown_method,
        "damaged or unsupported ZIP member (That compression method is not supported",
    ),
    "declared size above the cap": (_declared_huge, "larger than"),
    "bad local header": (_bad_local_header, "damaged or unsupported ZIP member (Bad magic number"),
    "not an image": (lambda tmp: _zip_with(tmp, data=b"\x89PNG nothing else")[0], "not a readable image"),
}


@pytest.mark.parametrize("case", ZIP_CASES)
def test_a_damaged_zip_member_is_skipped_and_reported_not_fatal(tmp_path, case):
    make, reason = ZIP_CASES[case]
    dataset = load_dataset(make(tmp_path), cache=False)
    assert dataset.counts()["train"] == {c: 2 for c in CLASSES}
    assert [s.name for s in dataset.skipped] == ["train/happy/x.png"]
    assert reason in dataset.skipped[0].reason


def test_data_inspect_reports_a_damaged_member_and_goes_on(tmp_path, capsys):
    assert main(["data", "inspect", str(_bad_crc(tmp_path)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["images"] == 3 * 3
    assert report["skipped"] == [
        {
            "file": "train/happy/x.png",
            "reason": "not read: damaged or unsupported ZIP member (Bad CRC-32 for file 'train/happy/x.png')",
        }
    ]


# --- sources that are not regular files -----------------------------------------------------------------------


def test_a_fifo_or_device_given_as_the_dataset_is_a_one_line_error(tmp_path, fifo_release):
    for source in (fifo_release(tmp_path / "data.zip"), tmp_path / "data.csv"):
        if not source.exists():
            source.symlink_to("/dev/zero")
        with pytest.raises(EmolensError, match="FIFO, device or socket, not a regular file"):
            load_dataset(source, cache=False)


# --- the FER2013 CSV ------------------------------------------------------------------------------------------

ROW = " ".join(["7"] * 2304)

CSV_CASES: dict[str, tuple[bytes, str]] = {
    "pixel value above 64 bits": (f"0,{ROW[:-1]}99999999999999999999999\n".encode(), "bad row: "),
    "a non-UTF-8 byte": (f"0,{ROW[:-1]}".encode() + b"\xff\n", "bad row: "),
    "a 10 MB field": (b"0," + b"1 " * 5_000_000 + b"\n", "bad row: field larger than field limit"),
    "missing pixels": (b"0\n", "bad row: "),
    "emotion not a number": (f"happy,{ROW}\n".encode(), "bad row: "),
    "emotion out of range": (f"9,{ROW}\n".encode(), "bad row: expected an emotion in 0-6"),
    "too few pixels": (b"0,1 2 3\n", "bad row: expected an emotion in 0-6 and 2304 pixels"),
    "negative pixel": (f"0,-1{ROW[1:]}\n".encode(), "bad row: expected"),
    "pixel not a number": (f"0,x{ROW[1:]}\n".encode(), "bad row: "),
    "a NUL byte": (f"0,{ROW[:-1]}".encode() + b"\x00\n", "bad row: "),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_a_broken_csv_row_is_skipped_and_reported(tmp_path, case):
    bad, reason = CSV_CASES[case]
    path = tmp_path / "fer2013.csv"
    good = "".join(f"{label},{ROW}\n" for label in range(7))
    path.write_bytes(b"emotion,pixels\n" + good.encode() + bad + f"3,{ROW}\n".encode())
    dataset = load_dataset(path, cache=False)
    assert len(dataset.split("train")) == 8
    assert len(dataset.skipped) == 1 and reason in dataset.skipped[0].reason, dataset.skipped


# --- predict --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recognizer():
    from emolens.predict import Recognizer

    return Recognizer("default")


PREDICT_CASES: dict[str, tuple[Callable[[Path, Callable], Path], str]] = {
    "fifo": (lambda folder, fifo: fifo(folder / "x.jpg"), "not a regular file (a FIFO, device or socket)"),
    "symlink to /dev/zero": (
        lambda folder, fifo: _symlink(folder / "x.jpg", "/dev/zero"),
        "not a regular file (a FIFO, device or socket)",
    ),
    "file above the size cap": (lambda folder, fifo: _sparse(folder / "x.jpg", BIG), "larger than 256 MB"),
    "decompression bomb": (
        lambda folder, fifo: _write(folder / "x.png", bomb_png(9000, 9000)),
        "image is 9000x9000, above 64,000,000 pixels",
    ),
    "text named .png": (lambda folder, fifo: _write(folder / "x.png", b"hello"), "not a readable image"),
    "EPS named .png (Ghostscript)": (
        lambda folder, fifo: _write(folder / "x.png", EPS),
        "not an image format emolens reads",
    ),
    "corrupt AVIF (RuntimeError in Pillow)": (
        lambda folder, fifo: _write(folder / "x.avif", corrupt_avif()),
        "not a readable image",
    ),
    "81-megapixel PNG named .mp4 (FFmpeg)": (
        lambda folder, fifo: _write(folder / "x.mp4", bomb_png(9000, 9000)),
        "video frames are 9000x9000, above 64,000,000 pixels",
    ),
    "video that opens without a frame": (
        lambda folder, fifo: _write(folder / "x.mp4", Y4M_HEADER),
        "no frame of the video could be decoded",
    ),
    "video whose first frame is cut": (
        lambda folder, fifo: _write(folder / "x.avi", Y4M_HEADER + b"FRAME\n" + bytes(100)),
        "no frame of the video could be decoded",
    ),
}
Y4M_HEADER = b"YUV4MPEG2 W48 H48 F30:1 Ip A1:1 C420jpeg\n"  # what FFmpeg opens as a video, whatever the file's suffix


def _symlink(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_names_a_hostile_file_and_goes_on(tmp_path, fifo_release, recognizer, case):
    make, error = PREDICT_CASES[case]
    bad = make(tmp_path, fifo_release) or next(tmp_path.glob("x.*"))
    good = _write(tmp_path / "blank.png", png_bytes(class_image(0, 0)))
    results = recognizer.predict([bad, good], errors="keep")
    assert [r.error is None for r in results] == [False, True]
    assert error in results[0].error


# --- fuzzed images in every allowed format --------------------------------------------------------------------


def _sample(fmt: str) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def fuzzed(fmt: str, count: int = 120) -> list[bytes]:
    """`count` damaged copies of a small image: one byte flipped at every position up to 40 (headers), then
    seeded random flips, cuts and repeats anywhere. Deterministic: the same corpus on every run."""
    import numpy as np

    data = _sample(fmt)
    rng = np.random.default_rng(sum(fmt.encode()))
    mutants = []
    for index in range(count):
        mutant = bytearray(data)
        if index < 40:
            mutant[index] ^= 0xFF
        elif index % 3 == 0:
            for position in rng.integers(0, len(data), 4):
                mutant[position] = rng.integers(0, 256)
        elif index % 3 == 1:
            mutant = mutant[: rng.integers(8, len(data))]
        else:
            start = int(rng.integers(0, len(data) - 8))
            mutant[start:start] = mutant[start : start + 8] * int(rng.integers(2, 50))
        mutants.append(bytes(mutant))
    return mutants


def corrupt_avif() -> bytes:
    """The first fuzzed AVIF on which Pillow itself raises RuntimeError (one flipped byte)."""
    import io

    from PIL import Image

    for mutant in fuzzed("AVIF"):
        try:
            with Image.open(io.BytesIO(mutant)) as image:
                image.load()
        except RuntimeError:
            return mutant
        except Exception:  # noqa: BLE001  (other failures are not the case looked for)
            pass
    raise AssertionError("no fuzzed AVIF makes Pillow raise RuntimeError: choose another corpus")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on damaged TIFF tags
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF"])
def test_every_fuzzed_image_decodes_or_is_not_an_image(fmt):
    """Whatever Pillow's decoders raise on damaged files (RuntimeError, KeyError, struct.error, ...), emolens says
    "not a readable image": the corpus holds such cases (the count is checked), so an escape fails here."""
    import io

    from PIL import Image

    from emolens.data.decode import UndecodableImage, decode_face, decode_photo

    raw_escapes = 0
    for mutant in fuzzed(fmt):
        try:
            with Image.open(io.BytesIO(mutant)) as image:
                image.load()
        except (OSError, ValueError):
            pass
        except Exception:  # noqa: BLE001  (exactly what is counted: failures that are neither)
            raw_escapes += 1
        for decode in (decode_photo, lambda data: decode_face(data)[0]):
            with contextlib.suppress(UndecodableImage):
                assert decode(mutant).dtype.name == "uint8"
    if fmt in ("AVIF", "BMP", "GIF", "TIFF"):  # RuntimeError and SyntaxError (AVIF), DecompressionBombError (others)
        assert raw_escapes > 0, (
            f"no fuzzed {fmt} raises anything but OSError/ValueError in Pillow: the corpus lost its teeth"
        )


# --- names that matplotlib would read as math-text ------------------------------------------------------------

MATH_CLASSES = ("$x^$", "happy", "sad")


def test_a_dollar_class_name_is_drawn_as_it_is_in_inspect_and_evaluate(tmp_path):
    import keras

    from emolens.models import build_model
    from emolens.models.saving import save_model

    data = write_tree(tmp_path / "fer", {"train": 2, "test": 2}, classes=MATH_CLASSES)
    assert main(["data", "inspect", str(data), "--out", str(tmp_path / "inspection")]) == 0
    assert (tmp_path / "inspection" / "class_counts.png").stat().st_size > 0
    keras.utils.set_random_seed(0)
    card = {"model": "seed", "class_names": list(MATH_CLASSES), "input_shape": [48, 48, 1], "train_sharpness": 45.0}
    model = save_model(build_model("seed", num_classes=3), tmp_path / "m.keras", card)
    assert main(["evaluate", str(model), str(data), "--out", str(tmp_path / "evaluation")]) == 0
    assert {"metrics.json", "report.html", "confusion_matrix.png"} <= {
        p.name for p in (tmp_path / "evaluation").iterdir()
    }


# --- outputs inside the dataset they come from ----------------------------------------------------------------


def _files_under(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.mark.parametrize(
    "command",
    [
        ["data", "inspect", "{data}", "--out", "{data}/train/happy"],
        ["data", "inspect", "{data}", "--fix", "{data}/clean"],
        ["data", "preview", "{data}", "--out", "{data}/train/happy/preview.png"],
        ["train", "{data}", "--epochs", "1", "--out", "{data}/train/run"],
        ["evaluate", "{model}", "{data}", "--out", "{data}/test/sad/evaluation"],
    ],
    ids=["inspect --out", "inspect --fix", "preview --out", "train --out", "evaluate --out"],
)
def test_an_output_folder_inside_the_dataset_is_refused_and_nothing_is_written(tmp_path, capsys, command):
    from emolens.models import build_model
    from emolens.models.saving import save_model

    data = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    card = {"model": "seed", "class_names": list(CLASSES), "input_shape": [48, 48, 1], "train_sharpness": 45.0}
    model = save_model(build_model("seed", num_classes=3), tmp_path / "m.keras", card)
    before = _files_under(data)
    assert main([part.format(data=data, model=model) for part in command]) == 2
    assert "is inside the dataset" in capsys.readouterr().err
    assert _files_under(data) == before


# --- degenerate datasets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "csv"])
def test_a_dataset_with_one_class_is_a_one_line_error_before_training(tmp_path, capsys, kind):
    if kind == "folder":
        data = write_tree(tmp_path / "fer", {"train": 3, "test": 1}, classes=("happy",))
    else:
        data = tmp_path / "fer2013.csv"
        data.write_text("emotion,pixels\n" + "".join(f"3,{ROW}\n" for _ in range(4)))
    assert main(["train", str(data), "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert "training images of 1 class (happy): a classifier needs at least two" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_csv_with_empty_classes_trains_with_a_warning_naming_them(tmp_path, capsys):
    data = tmp_path / "fer2013.csv"
    data.write_text("emotion,pixels\n" + "".join(f"{label},{ROW}\n" for label in (0, 3) for _ in range(6)))
    assert main(["train", str(data), "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "run")]) == 0
    err = "".join(capsys.readouterr().err.split())  # Rich wraps long lines
    assert "hasnotrainingimagesofdisgust,fear,sad,surprise,neutral:themodelwillneverpredictthem" in err


# --- messages -------------------------------------------------------------------------------------------------


def test_a_full_disk_names_the_file_that_was_being_written_and_leaves_no_partial_file(tmp_path):
    from emolens._io import atomic_path

    target = tmp_path / "out" / "metrics.json"
    with (
        pytest.raises(OSError) as raised,
        atomic_path(target) as partial,
        open(partial, "wb") as file,
        open("/dev/full", "wb", buffering=0) as full,
    ):
        file.write(b"{}")
        full.write(b"x" * 10)  # what a write to a full disk raises: ENOSPC, with no file name
    assert raised.value.errno == 28 and raised.value.filename == str(target)
    assert list(target.parent.iterdir()) == []


def test_predict_says_a_fifo_is_not_a_regular_file_rather_than_missing(tmp_path, fifo_release, capsys):
    fifo = fifo_release(tmp_path / "x.jpg")
    assert main(["predict", str(fifo), "--json"]) == 1  # as for any input that could not be read
    err = capsys.readouterr().err
    assert "x.jpg: not a regular file (a FIFO, device or socket)" in err and "no such file" not in err


# --- model cards that disagree with their network -------------------------------------------------------------


def _onnx_with_card(path: Path, text: str) -> Path:
    import onnx

    from emolens.models.card import ONNX_CARD_KEY
    from emolens.models.classifier import BUNDLED_DIR

    proto = onnx.load(str(BUNDLED_DIR / "default.onnx"))
    next(p for p in proto.metadata_props if p.key == ONNX_CARD_KEY).value = text
    onnx.save(proto, str(path))
    return path


def _keras_with(path: Path, member: str, data: Callable[[bytes], bytes]) -> Path:
    """The bundled .keras file with `member` replaced by `data(its bytes)`."""
    from emolens.models.classifier import BUNDLED_DIR

    with (
        zipfile.ZipFile(BUNDLED_DIR / "default.keras") as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for name in source.namelist():
            copy.writestr(name, data(source.read(name)) if name == member else source.read(name))
    return path


def _keras_with_card(path: Path, card: dict) -> Path:
    from emolens.models.card import CARD_MEMBER

    return _keras_with(path, CARD_MEMBER, lambda _: json.dumps(card).encode())


def _widest_dense(architecture: bytes, units: int) -> bytes:
    """The architecture with its output layer's units set to `units`."""
    text = architecture.decode()
    at = text.rindex('"units": ')
    return (text[:at] + f'"units": {units}' + text[text.index(",", at) :]).encode()


def _constant_folding_bomb(path: Path) -> Path:
    """A 200-byte ONNX model whose constant subgraph (ConstantOfShape [10000, 10000]) ONNX Runtime would compute,
    400 MB, when loading it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node(
            "ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        ),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("Mul", ["x", "total"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[numpy_helper.from_array(np.array([10000, 10000], np.int64), "shape")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _bundled_card() -> dict:
    from emolens.models.classifier import BUNDLED_DIR

    return json.loads((BUNDLED_DIR / "default.json").read_text())


CARD_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "onnx card not JSON": (
        lambda tmp: _onnx_with_card(tmp / "m.onnx", "{not json"),
        "its emolens card is not valid JSON",
    ),
    "onnx card a JSON list": (
        lambda tmp: _onnx_with_card(tmp / "m.onnx", "[1, 2]"),
        "its emolens card is not a JSON object",
    ),
    "onnx card without class names": (
        lambda tmp: _onnx_with_card(
            tmp / "m.onnx", json.dumps({k: v for k, v in _bundled_card().items() if k != "class_names"})
        ),
        "its card names no class_names",
    ),
    "onnx card with 3 classes for the bundled model's outputs": (
        lambda tmp: _onnx_with_card(
            tmp / "m.onnx", json.dumps({**_bundled_card(), "class_names": ["a", "b", "c"], "class_scale": None})
        ),
        f"has {len(_bundled_card()['class_names'])} outputs but its card names 3 classes",
    ),
    "onnx card with repeated class names": (
        lambda tmp: _onnx_with_card(
            tmp / "m.onnx",
            json.dumps({**_bundled_card(), "class_names": ["happy"] * len(_bundled_card()["class_names"])}),
        ),
        "class_names must be a list of distinct names",
    ),
    "keras card with the wrong input shape": (
        lambda tmp: _keras_with_card(tmp / "m.keras", {**_bundled_card(), "input_shape": [10, 10, 1]}),
        "its card says input_shape [10, 10, 1] but the network takes [44, 44, 1]",
    ),
    "keras card with a colour input shape": (
        lambda tmp: _keras_with_card(tmp / "m.keras", {**_bundled_card(), "input_shape": [44, 44, 3]}),
        "is not [side, side, 1]",
    ),
    "onnx constant folding to 400 MB": (
        lambda tmp: _constant_folding_bomb(tmp / "m.onnx"),
        "computes a tensor 'big' of 10000x10000 values",
    ),
    "keras card member of 5 MB (not read)": (
        lambda tmp: _keras_with(tmp / "m.keras", "emolens.json", lambda card: card + b" " * 5_000_000),
        "emolens.json, above 4,194,304",
    ),
    "keras Dense of 10^11 units (400 GB)": (
        lambda tmp: _keras_with(
            tmp / "m.keras", "config.json", lambda architecture: _widest_dense(architecture, 10**11)
        ),
        "asks for a layer with units=100000000000",
    ),
    "keras card with an image size below the input": (
        lambda tmp: _keras_with_card(tmp / "m.keras", {**_bundled_card(), "image_size": 20}),
        "image_size 20 is not a side of at least 44 pixels",
    ),
}


@pytest.mark.parametrize("case", CARD_CASES)
def test_a_model_whose_card_disagrees_with_it_is_a_one_line_error(tmp_path, capsys, case):
    make, message = CARD_CASES[case]
    model = make(tmp_path)
    assert (
        main(["predict", str(_write(tmp_path / "grey.png", png_bytes(class_image(0, 0)))), "--model", str(model)]) == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in " ".join(err.split()), err


def test_serve_refuses_a_model_whose_card_is_not_json_before_listening(tmp_path, capsys):
    model = _onnx_with_card(tmp_path / "m.onnx", "{not json")
    assert main(["serve", "--model", str(model), "--port", "0"]) == 2
    assert "its emolens card is not valid JSON" in " ".join(capsys.readouterr().err.split())


# --- serve ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hardened_server(tmp_path_factory) -> Iterator[str]:
    from conftest import start_server

    log = tmp_path_factory.mktemp("serve") / "server.log"
    process, url = start_server(
        log, "--request-timeout", "1", "--allow-host", "photos.example", "--allow-host", "Cams.Example:8000"
    )
    yield url
    process.terminate()
    process.wait(timeout=20)
    assert "Traceback" not in log.read_text()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("attacker.example", 400),
        ("127.0.0.1.attacker.example", 400),
        ("", 400),
        ("localhost", 200),
        ("[::1]", 200),
        ("photos.example", 200),
        ("PHOTOS.example.", 200),
        ("cams.example", 200),
    ],
)
def test_serve_answers_only_to_its_own_host_names(hardened_server, host, status):
    import httpx

    authority = f"{host}:{_port(hardened_server)}" if host else ""
    answer = httpx.get(f"{hardened_server}/v1/health", headers={"Host": authority})
    assert answer.status_code == status
    if status == 400:
        assert "--allow-host" in answer.json()["error"]


@pytest.mark.parametrize(
    ("origin", "status"), [("http://evil.example", 403), ("null", 403), ("{url}", 415), (None, 415)]
)
def test_serve_refuses_requests_from_pages_of_another_origin(hardened_server, origin, status):
    import httpx

    headers = {} if origin is None else {"Origin": origin.format(url=hardened_server)}
    # Not an image: a request that gets past the origin check is answered 415.
    answer = httpx.post(f"{hardened_server}/v1/predict", content=b"hello", headers=headers)
    assert answer.status_code == status and "error" in answer.json()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_serve_offers_no_docs_page_that_would_need_a_cdn(hardened_server, path):
    import httpx

    assert httpx.get(f"{hardened_server}{path}").status_code == 404
    assert httpx.get(f"{hardened_server}/openapi.json").status_code == 200


def _seconds_until_closed(client, trickle: bytes, within: float) -> float | None:
    """Sends `trickle` every 0.25 s (each byte would restart uvicorn's own keep-alive timer) until the server
    closes the connection; the seconds that took, or None if it was still open after `within`."""
    import select

    began = time.monotonic()
    while time.monotonic() - began < within:
        try:
            client.sendall(trickle)
            if select.select([client], [], [], 0.25)[0] and client.recv(4096) == b"":
                return time.monotonic() - began
        except OSError:  # reset: closed while we were sending
            return time.monotonic() - began
    return None


@pytest.mark.parametrize(
    ("sent", "trickle"),
    [
        (b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n"),
        (b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", b"x"),
        (b"", b""),
    ],
    ids=["slow headers", "slow body", "silent"],
)
def test_serve_disconnects_a_client_that_does_not_send_its_request_in_time(hardened_server, sent, trickle):
    import socket

    with socket.create_connection(("127.0.0.1", _port(hardened_server)), timeout=10) as client:
        client.sendall(sent)
        seconds = _seconds_until_closed(client, trickle, within=6)
    assert seconds is not None, "the connection was still open after 6 s (--request-timeout 1)"


def test_serve_keeps_a_keep_alive_connection_for_a_second_request(hardened_server):
    import httpx

    with httpx.Client() as client:  # one connection: the deadline starts again after each response
        for _ in range(2):
            assert client.get(f"{hardened_server}/v1/health").status_code == 200
            time.sleep(0.6)


def test_serve_memory_stays_bounded_under_concurrent_huge_uploads(tmp_path):
    """8 small PNGs that decode to 25 megapixels of RGBA each, sent at once: at most two decode together (1 GB
    budget, about 14 bytes a pixel each). Measured above the server's memory at start (134 MB): 850-1,070 MB
    with the budget (what the allocator has not yet handed back varies from run to run), 2,130 MB with a budget
    too large to bind, and 3.5 GB before the lean conversions. The bound sits between the two."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import numpy as np
    from PIL import Image

    from conftest import start_server

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((5000, 5000, 4), np.uint8)).save(buffer, format="PNG", compress_level=1)
    upload = buffer.getvalue()

    def peak_mb(pid: int) -> float:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return int(status["VmHWM"].split()[0]) / 1024

    process, url = start_server(tmp_path / "server.log")
    try:
        at_start = peak_mb(process.pid)
        with ThreadPoolExecutor(8) as pool:  # threads, not asyncio: the browser tests may leave an event loop running
            statuses = list(
                pool.map(lambda _: httpx.post(f"{url}/v1/predict", content=upload, timeout=120).status_code, range(8))
            )
        assert statuses == [200] * 8
        grown = peak_mb(process.pid) - at_start
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert grown < 1400, f"serve grew by {grown:.0f} MB over its {at_start:.0f} MB at start"


def test_serve_answers_a_corrupt_avif_415_among_concurrent_good_uploads(hardened_server):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    photo = png_bytes(class_image(0, 0))
    uploads = [photo] * 15 + [corrupt_avif()] + [photo] * 15
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda data: httpx.post(f"{hardened_server}/v1/predict", content=data, timeout=60), uploads)
        )
    assert [answer.status_code for answer in answers] == [200] * 15 + [415] + [200] * 15
    assert answers[15].json()["error"].startswith("not an image emolens can read")


@pytest.fixture(scope="module")
def small_budget_server(tmp_path_factory) -> Iterator[str]:
    """Uploads up to 1 MB, so the upload budget is 16 MB (8 uploads, held twice), and 12 connections at most."""
    from conftest import start_server

    log = tmp_path_factory.mktemp("serve") / "server.log"
    process, url = start_server(log, "--max-upload-mb", "1", "--max-connections", "12")
    yield url
    process.terminate()
    process.wait(timeout=20)
    assert "Traceback" not in log.read_text()


def _partial_upload(url: str, size: int, sent: int):
    """A connection that has sent the headers of a `size`-byte upload and `sent` bytes of its body."""
    import socket

    client = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)
    client.sendall(
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * sent
    )
    return client


def _status_within(url: str, wanted: int, content: bytes = b"not an image", seconds: float = 15) -> int:
    """Posts until the answer is `wanted` (the server takes in what other connections sent at its own pace), or
    gives the last status after `seconds`."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            status = httpx.post(f"{url}/v1/predict", content=content, timeout=10).status_code
        except httpx.TransportError:
            status = 0
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_serve_refuses_bodies_beyond_its_upload_budget_then_takes_them_again(small_budget_server):
    """Eight clients hold 999 KB each of unfinished 1 MB uploads (15.98 MB of the 16 MB budget, counted twice);
    a ninth upload of 100 KB would go over: 503 with Retry-After, not another buffered body. Once they end,
    uploads are taken again."""
    import httpx

    holders = [_partial_upload(small_budget_server, 1_000_000, 999_000) for _ in range(8)]
    try:
        big = b"x" * 100_000
        assert _status_within(small_budget_server, 503, big) == 503
        answer = httpx.post(f"{small_budget_server}/v1/predict", content=big, timeout=10)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1" and "busy" in answer.json()["error"]
    finally:
        for holder in holders:
            holder.close()
    assert _status_within(small_budget_server, 415) == 415


def test_serve_answers_503_beyond_its_connection_limit(small_budget_server):
    import socket

    idle = [socket.create_connection(("127.0.0.1", _port(small_budget_server)), timeout=10) for _ in range(12)]
    try:
        assert _status_within(small_budget_server, 503) == 503
    finally:
        for connection in idle:
            connection.close()
    assert _status_within(small_budget_server, 415) == 415


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/health"), ("POST", "/v1/predict"), ("GET", "/nowhere"), ("GET", "/")]
)
def test_serve_tells_browsers_not_to_sniff_any_answer(hardened_server, method, path):
    import httpx

    answer = httpx.request(method, f"{hardened_server}{path}", content=b"x" if method == "POST" else None)
    assert answer.headers["x-content-type-options"] == "nosniff"


# --- tampered run folders -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A run of 2 epochs stopped after 1 (its checkpoint says so), ready for --resume."""
    from emolens.models.saving import read_card

    root = tmp_path_factory.mktemp("resume")
    data = write_tree(root / "fer", {"train": 4, "test": 1})
    run = root / "run"
    assert main(["train", str(data), "--epochs", "1", "--model", "seed", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    config["config"]["epochs"] = 2  # the resumable state of a run interrupted after its first epoch
    (run / "config.json").write_text(json.dumps(config))
    assert read_card(run / "last.keras")["training_state"]["epochs_done"] == 1
    return run


def _edited(config: dict, edit: Callable[[dict], object]) -> str:
    edited = json.loads(json.dumps(config))
    edit(edited)
    return json.dumps(edited)


TAMPERED_CONFIGS: dict[str, tuple[Callable[[dict, str], str], str]] = {
    # JSON words the error by where the cut lands (in a string or between values); both name the place.
    "truncated": (lambda config, text: text[: len(text) // 2], "(char "),
    "a string for epochs": (
        lambda config, text: _edited(config, lambda c: c["config"].update(epochs="2")),
        "Expected epochs to be int",
    ),
    "batch size 0": (
        lambda config, text: _edited(config, lambda c: c["config"].update(batch_size=0)),
        "Expected batch_size >= 1",
    ),
    "an unknown setting": (
        lambda config, text: _edited(config, lambda c: c["config"].update(colour=1)),
        "Unknown training settings: colour",
    ),
    "augment as a string": (
        lambda config, text: _edited(config, lambda c: c["config"].update(augment="flip")),
        "augmentation settings as an object",
    ),
    "no data section": (lambda config, text: _edited(config, lambda c: c.pop("data")), '"data" is missing'),
    "a list": (lambda config, text: "[1, 2]", "a JSON list, not an object"),
    "class names as a string": (
        lambda config, text: _edited(config, lambda c: c.update(class_names="happy")),
        '"class_names" is not a list',
    ),
    "not UTF-8": (lambda config, text: text.replace("{", "{\udcff", 1), "codec can't decode"),
}


@pytest.mark.parametrize("case", TAMPERED_CONFIGS)
def test_resume_of_a_run_with_a_tampered_config_is_a_one_line_error(finished_run, tmp_path, capsys, case):
    import shutil

    run = shutil.copytree(finished_run, tmp_path / "run")
    text = (run / "config.json").read_text()
    tamper, why = TAMPERED_CONFIGS[case]
    (run / "config.json").write_bytes(tamper(json.loads(text), text).encode("utf-8", "surrogateescape"))
    assert main(["train", "--resume", str(run)]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "config.json is damaged" in error and why in error and "restore it" in error
    assert "Traceback" not in error


@pytest.mark.parametrize("part", ["garbage", "parquet without a source column"])
def test_a_ray_output_folder_with_a_foreign_part_is_a_one_line_error(tmp_path, capsys, part):
    pytest.importorskip("ray", reason='the Ray engine needs the ray extra: pip install -e ".[ray]"')
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "results"
    out.mkdir()
    if part == "garbage":
        (out / "part-00000.parquet").write_bytes(b"PAR1 not really")
    else:
        pq.write_table(pa.table({"name": ["a.png"]}), out / "part-00000.parquet")
    photo = _write(tmp_path / "blank.png", png_bytes(class_image(0, 0)))
    assert main(["predict", str(photo), "--engine", "ray", "--out", str(out)]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "part-00000.parquet is not a part emolens wrote" in error and "choose another --out" in error
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]


# --- outputs people open ------------------------------------------------------------------------------------


def test_a_file_name_that_is_a_formula_stays_text_in_faces_csv(tmp_path, monkeypatch):
    import csv
    import shutil

    from conftest import ROOT

    monkeypatch.chdir(tmp_path)  # `emolens predict NAME` in the photo's folder: the source cell is the bare name
    name = '=HYPERLINK("evil.example","x").png'
    shutil.copy(ROOT / "samples" / "astronaut.png", name)
    assert main(["predict", name, "--out", "out"]) == 0
    with open("out/faces.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1 and rows[0]["source"] == "'" + name


@pytest.mark.parametrize("name", ["two\nlines.png", "gnp\u202e.exe.png", "tab\there.png"])
def test_a_file_name_with_line_breaks_or_bidi_controls_prints_on_one_escaped_line(tmp_path, capsys, name):
    import shutil

    from conftest import ROOT

    photo = tmp_path / name
    shutil.copy(ROOT / "samples" / "astronaut.png", photo)
    assert main(["predict", str(photo)]) == 0
    lines = capsys.readouterr().out.splitlines()
    escaped = name.encode("unicode_escape").decode()
    assert len(lines) == 1 and escaped in lines[0] and name not in lines[0]


def test_an_input_that_predict_would_overwrite_is_refused_before_anything_is_written(tmp_path, capsys):
    photo = _write(tmp_path / "faces.csv", png_bytes(class_image(0, 0)))  # an image under the output's name
    assert main(["predict", str(photo), "--out", str(tmp_path)]) == 2
    assert "would write its faces.csv over it" in " ".join(capsys.readouterr().err.split())
    assert photo.read_bytes() == png_bytes(class_image(0, 0)) and sorted(p.name for p in tmp_path.iterdir()) == [
        "faces.csv"
    ]


def test_predict_into_a_folder_inside_its_input_never_reads_its_own_outputs(tmp_path, capsys):
    import shutil

    from conftest import ROOT

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ROOT / "samples" / "astronaut.png", photos / "a.png")
    for _ in range(2):  # the second run finds photos/out/ full of annotated pictures
        assert main(["predict", str(photos), "--out", str(photos / "out"), "--json"]) == 0
        assert [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()] == [str(photos / "a.png")]
    assert main(["predict", str(photos), "--out", str(photos)]) == 2
    assert "is the output folder or inside it" in " ".join(capsys.readouterr().err.split())


def test_inspect_fix_onto_a_full_disk_names_the_folder_asked_for_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import errno

    from PIL import Image

    from emolens.data.synth import synthesize_dataset

    data = synthesize_dataset(
        tmp_path / "fer", train_per_class=3, test_per_class=1, seed=0
    )  # faces: none is cleaned away

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write to a full disk: no file named

    monkeypatch.setattr(Image.Image, "save", full_disk)
    assert main(["data", "inspect", str(data), "--fix", str(tmp_path / "clean")]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"cannot use {tmp_path / 'clean'}: No space left on device. Free some space" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer"]
