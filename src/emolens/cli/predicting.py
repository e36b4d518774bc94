"""The `emolens predict` subcommand, on the local engine or on Ray."""

from __future__ import annotations

import argparse
import sys
from typing import cast

from emolens.cli._common import (
    _add_detector_flags,
    _add_model_flag,
    _add_sources_argument,
    _add_tta_flag,
    _command,
    _detector_config,
    _non_negative_int,
    _positive_int,
    _shown,
    _start_backend,
    console,
    stdout,
)
from emolens.errors import EmolensError


def _face_summary(faces: list) -> str:
    if not faces:
        return "[dim]no face found[/]"
    shown = ", ".join(f"[bold]{face.emotion}[/] {face.confidence:.2f}" for face in faces[:6])
    more = f" and {len(faces) - 6} more" if len(faces) > 6 else ""
    return f"{len(faces)} face{'s' if len(faces) != 1 else ''}: {shown}{more}"


class _VideoSummary:
    """What one video or camera session showed, printed when it ends: a line for the video, then one per tracked
    face (the most seen first): its main emotion, the share of its frames that showed it, and when it was seen."""

    SHOWN_FACES = 10

    def __init__(self, class_names: list[str]) -> None:
        self.class_names = class_names
        self._start(None)

    def _start(self, source: str | None) -> None:
        from emolens.predict.tracks import VideoTracks

        self.source = source
        self.analysed = self.with_faces = 0
        self.counts: dict[str, int] = {}
        self.tracks = VideoTracks(self.class_names)

    def add(self, result) -> None:
        if result.source != self.source:
            self.show()
            self._start(result.source)
        self.analysed += 1
        self.with_faces += bool(result.faces)
        for face in result.faces:
            self.counts[face.emotion] = self.counts.get(face.emotion, 0) + 1
        self.tracks.add(result)

    def show(self) -> None:
        if self.source is None:
            return
        seen = ", ".join(
            f"{emotion} {count}" for emotion, count in sorted(self.counts.items(), key=lambda item: -item[1])[:3]
        )
        tracked = len(self.tracks.tracks)
        faces = f", {tracked} face{'s' if tracked != 1 else ''} tracked" if tracked else ""
        stdout.print(
            f"{_shown(self.source)}: {self.analysed} frames analysed, {self.with_faces} with faces{faces}"
            + (f"; most seen: {seen}" if seen else ""),
            soft_wrap=True,
        )
        # rows() types its values as object; "frames" is the face's count of analysed frames.
        rows = sorted(self.tracks.rows(), key=lambda row: -cast(int, row["frames"]))
        for row in rows[: self.SHOWN_FACES]:
            stdout.print(
                f"  face {row['face']}: {row['emotion']} in {row['share']:.0%} of its {row['frames']} frames "
                f"({row['first_seen']:g}-{row['last_seen']:g} s)"
            )
        if len(rows) > self.SHOWN_FACES:
            stdout.print(f"  and {len(rows) - self.SHOWN_FACES} more faces (each in <name>.tracks.csv with --out DIR)")
        self.source = None


def _check_local_flags(args: argparse.Namespace) -> None:
    """Flags that make no sense together on the local engine, refused before anything loads."""
    if args.address is not None:
        raise EmolensError("--address is for --engine ray: leave it out, or add --engine ray.")
    from emolens.predict.formats import DEFAULT_OUTPUT_FORMAT

    if args.formats != DEFAULT_OUTPUT_FORMAT and args.out is None:
        raise EmolensError("--formats names the files written into --out DIR: pass --out DIR too.")
    if args.explain and args.out is None:
        raise EmolensError("--explain draws heat maps into the annotated pictures: pass --out DIR too.")


class _Outputs:
    """Where each result goes: the terminal (a line per picture, a summary per video) or --json, --out DIR, and
    the --show window."""

    def __init__(self, args: argparse.Namespace, class_names: list[str], out) -> None:
        from emolens.predict.writers import JsonLinesWriter

        self.json_lines = JsonLinesWriter(sys.stdout) if args.json else None
        self.video = _VideoSummary(class_names)
        self.out = out
        self.window = None
        if args.show:
            from emolens.predict.window import LiveWindow

            self.window = LiveWindow("emolens (q or Esc: stop)")

    def take(self, result) -> None:
        if self.json_lines is not None:
            self.json_lines.write(result)
        elif result.is_video_frame:
            self.video.add(result)
        else:
            self.video.show()
            stdout.print(f"{_shown(result.source)}: {_face_summary(result.faces)}", soft_wrap=True)
        if self.out is not None:
            self.out.write(result)
        if self.window is not None:
            self.window.show(result.plot())

    @property
    def stopped(self) -> bool:
        """Whether the person closed the --show window: the run ends as Ctrl-C ends a camera session."""
        return self.window is not None and self.window.closed

    def close(self, error: BaseException | None = None) -> None:
        if self.window is not None:
            self.window.close()
        if error is None and self.json_lines is None:
            self.video.show()
        if self.out is not None:
            self.out.close(error)


def cmd_predict(args: argparse.Namespace) -> int:
    """The emotion of every face in photos, folders, videos or a webcam.

    Find faces and recognise their emotions. Exit status 1 if any input could not be read.
    """
    from emolens._progress import track
    from emolens.models.classifier import needs_keras
    from emolens.predict import Recognizer, Sources
    from emolens.predict.writers import OutputFolder

    if not args.sources and args.camera is None:
        raise EmolensError("nothing to predict on: pass image files, folders or videos, or --camera N.")
    if args.engine == "ray":
        return _predict_on_ray(args)
    _check_local_flags(args)
    if needs_keras(args.model) or args.explain:
        _start_backend(args.verbose)
    recognizer = Recognizer(
        args.model, detector=_detector_config(args), tta=args.tta, explain=args.explain, workers=args.workers
    )
    given = ([args.camera] if args.camera is not None else []) + list(args.sources)
    out = OutputFolder(args.out, recognizer.class_names, formats=args.formats.split(",")) if args.out else None
    sources = out.sources(given, every=args.every) if out is not None else Sources(given, every=args.every)
    total = sources.count()  # lists the folders, once: the progress bar's total and the predictions alike
    outputs = _Outputs(args, recognizer.class_names, out)
    failures = 0
    results = recognizer.predict(sources, stream=True, smooth=args.smooth, errors="keep")
    try:
        for result in track(results, total=total, description="Pictures"):
            if result.error is not None:
                failures += 1
                console.print(f"[bold red]skipped[/] {_shown(f'{result.source}: {result.error}')}", soft_wrap=True)
                continue
            outputs.take(result)
            if outputs.stopped:
                break
    except BaseException as error:
        outputs.close(error)
        raise
    outputs.close()
    if out is not None and not args.json:
        stdout.print(f"Annotated files and faces.csv in [bold]{_shown(args.out)}[/]")
    if failures:
        console.print(f"[red]{failures} input(s) could not be read.[/]")
        return 1
    return 0


def _predict_on_ray(args: argparse.Namespace) -> int:
    from emolens.predict.formats import DEFAULT_OUTPUT_FORMAT
    from emolens.predict.ray_engine import BatchSettings, predict_to_parquet

    if args.out is None:
        raise EmolensError("--engine ray writes Parquet: pass --out DIR (a re-run skips what DIR already holds).")
    if args.camera is not None or args.json or args.explain or args.formats != DEFAULT_OUTPUT_FORMAT:
        raise EmolensError(
            "--engine ray reads files (images, videos, folders, ZIPs, lists) into Parquet; "
            "--camera, --json, --explain and --formats are for the local engine."
        )
    settings = BatchSettings(args.model, _detector_config(args), args.tta, args.every, args.smooth)
    summary = predict_to_parquet(args.sources, args.out, settings=settings, address=args.address, workers=args.workers)
    done = f"; {summary.skipped} input(s) already in {_shown(args.out)} skipped" if summary.skipped else ""
    stdout.print(
        f"{summary.inputs} input(s) in {summary.seconds:.1f} s (Ray's start {summary.startup_seconds:.1f} s): {summary.rows} rows in "
        f"{summary.parts} Parquet part(s) in [bold]{_shown(args.out)}[/]{done}",
        soft_wrap=True,
    )
    if summary.errors:
        console.print(f"[red]{summary.errors} input(s) could not be read: their rows say why (column `error`).[/]")
        return 1
    return 0


def add_commands(commands) -> None:
    """Adds `emolens predict`: what to read, how to find faces, then what to write and where to run."""
    predict = _command(commands, "predict", cmd_predict, needs_backend=False)
    _add_sources_argument(predict, nargs="*")
    _add_model_flag(predict)
    _add_detector_flags(predict)
    predict.add_argument("--every", type=_positive_int, default=1, help="analyse every K-th video frame (default 1)")
    predict.add_argument("--camera", type=int, metavar="N", help="read webcam N (0 is the first); stop with Ctrl-C")
    predict.add_argument(
        "--show",
        action="store_true",
        help="show each annotated picture or frame in a window as it is analysed (q or Esc, or closing it, stops)",
    )
    _add_predict_output_flags(predict)
    _add_tta_flag(predict)
    _add_predict_engine_flags(predict)


def _add_predict_output_flags(predict: argparse.ArgumentParser) -> None:
    """What predict writes and where: files in --out, JSON lines, smoothed videos, explanations."""
    from emolens.predict.formats import DEFAULT_OUTPUT_FORMAT, output_format_classes, output_formats

    names = output_formats()
    files = dict(zip(names, (cls.filename for cls in output_format_classes(names)), strict=True))
    listed = ", ".join(
        f"{name} ({file}{', the default' if name == DEFAULT_OUTPUT_FORMAT else ''})" for name, file in files.items()
    )
    predict.add_argument(
        "--out", help=f"folder for annotated pictures and videos, timelines and {files[DEFAULT_OUTPUT_FORMAT]}"
    )
    predict.add_argument(
        "--formats", default=DEFAULT_OUTPUT_FORMAT, help=f"comma-separated output formats written into --out: {listed}"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON object per image or analysed frame")
    predict.add_argument(
        "--smooth",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="in videos, average each tracked face's probabilities over its last N frames (default 0: off)",
    )
    predict.add_argument(
        "--explain",
        action="store_true",
        help="with --out: a Grad-CAM heat map per face in the annotated pictures, "
        "and <name>.faceK.explain.png per face (loads the Keras model)",
    )


def _add_predict_engine_flags(predict: argparse.ArgumentParser) -> None:
    """Where predict runs: this process's threads or Ray actors."""
    predict.add_argument(
        "--engine",
        default="local",
        choices=("local", "ray"),
        help="local (this process) or ray: Ray Data actors writing Parquet to --out, resumable (default local)",
    )
    predict.add_argument(
        "--address",
        metavar="ADDR",
        help="with --engine ray: join this Ray cluster (auto, or ray://host:port); default: a local Ray for this command",
    )
    predict.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="threads decoding pictures and finding faces side by side; with --engine ray, Ray actors, one CPU each "
        "(default: every core; for ray, every CPU of the cluster)",
    )
