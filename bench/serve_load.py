"""Load test of `emolens serve` on loopback: N concurrent clients posting a photo for a while, each sending its
next request as soon as the last is answered.

Reports requests/s, p50/p95/p99 latency and errors for each server setting. Target (issue): 32 clients, 30 s,
zero errors and p95 under 100 ms on 2 cores. The clients run on the same machine as the server.

Then the server's memory under worst-case uploads: small files that decode to just under the 64-megapixel cap
(a 7999x7999 RGBA PNG of zeros, 248 KB; the same as 16-bit gray), CONCURRENT at once, then MANY clients at
once each sending the RGBA one padded to 9.9 MB; its resident memory before, at the peak (VmHWM) and after.
Target (issue 13): peak under 1.5 GB with 8 at once; the README states the bound for any mix.

Usage: python bench/serve_load.py [--clients 1,8,32] [--seconds 30] [--workers 1,2] [--photo samples/astronaut.png]
       [--detectors yunet,haar] [--concurrent 8] [--many 100] [--no-load | --no-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(args: list[str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """`emolens serve` with `args` on a free port, once it answers; stopped when the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emolens", "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        raise SystemExit(f"the server with {args} did not start")
    try:
        yield process, url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def load(url: str, photo: bytes, clients: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    answer = await client.post(
                        f"{url}/v1/predict", content=photo, headers={"Content-Type": "image/png"}
                    )
                    ok = answer.status_code == 200 and answer.json()["faces"]
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors


def worst_case_uploads(many: int) -> list[tuple[str, bytes, int]]:
    """(label, file, how many at once): PNG files of a few hundred KB that decode to just under 64 megapixels,
    then the worst mix for the upload budget too: `many` clients each sending the RGBA one padded to 9.9 MB
    (Pillow ignores what follows the image), so every body is both as large and as costly to decode as allowed."""
    side = 7999
    uploads = {}
    for label, pixels in (
        ("RGBA", np.zeros((side, side, 4), np.uint8)),
        ("16-bit gray", np.zeros((side, side), np.uint16)),
    ):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
        uploads[label] = buffer.getvalue()
    padded = uploads["RGBA"] + bytes(9_900_000 - len(uploads["RGBA"]))
    return [
        *((f"{label} 7999x7999 PNG", data, 0) for label, data in uploads.items()),
        ("RGBA 7999x7999 PNG padded to 9.9 MB", padded, many),
    ]


def resident_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/{pid}/status (this measurement needs Linux)")


async def send_at_once(url: str, upload: bytes, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count)  # every request on its own connection, all at once
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        answers = await asyncio.gather(
            *(client.post(f"{url}/v1/predict", content=upload) for _ in range(count)), return_exceptions=True
        )
    return [answer.status_code if isinstance(answer, httpx.Response) else type(answer).__name__ for answer in answers]


def measure_memory(concurrent: int, many: int) -> None:
    print()
    print("| upload | size | at once | statuses | RSS before | peak RSS | RSS after |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for label, upload, count in worst_case_uploads(many):
        # A fresh server per row: VmHWM is a lifetime peak.
        with serving(["--max-upload-mb", "10"]) as (process, url):
            before = resident_mb(process.pid, "VmRSS")
            statuses = asyncio.run(send_at_once(url, upload, count or concurrent))
            peak, after = resident_mb(process.pid, "VmHWM"), resident_mb(process.pid, "VmRSS")
            shown = ", ".join(f"{statuses.count(s)} x {s}" for s in sorted(set(statuses), key=str))
            print(
                f"| {label} | {len(upload) / 1024:.0f} KB | {count or concurrent} | {shown} | "
                f"{before:.0f} MB | {peak:.0f} MB | {after:.0f} MB |",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8,32", help="comma-separated numbers of concurrent clients to try")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to try")
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "astronaut.png")
    parser.add_argument(
        "--detectors", default="yunet,haar", help="comma-separated detector names to try (default yunet,haar)"
    )
    parser.add_argument(
        "--concurrent", type=int, default=8, help="worst-case uploads sent at once in the memory test (default 8)"
    )
    parser.add_argument(
        "--many",
        type=int,
        default=100,
        help="clients sending a 9.9 MB worst-case body at once in the memory test (default 100)",
    )
    parser.add_argument("--no-load", action="store_true", help="only the memory test")
    parser.add_argument("--no-memory", action="store_true", help="only the load test")
    args = parser.parse_args()
    if not args.no_load:
        run_load(args)
    if not args.no_memory:
        measure_memory(args.concurrent, args.many)
    return 0


def run_load(args: argparse.Namespace) -> None:
    photo = args.photo.read_bytes()
    settings = [
        (f"{detector}, {w} worker(s)", ["--workers", w, "--detector", detector])
        for detector in args.detectors.split(",")
        for w in args.workers.split(",")
    ]
    print(f"{args.seconds:.0f} s per row, {args.photo.name} ({len(photo):,} bytes), loopback")
    print()
    print("| server | clients | requests/s | p50 | p95 | p99 | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, extra in settings:
        with serving(extra) as (_, url):
            for clients in (int(n) for n in args.clients.split(",")):
                asyncio.run(load(url, photo, clients, 3.0))  # warm-up
                latencies, errors = asyncio.run(load(url, photo, clients, args.seconds))
                p50, p95, p99 = (1000 * np.percentile(latencies, q) for q in (50, 95, 99))
                print(
                    f"| {label} | {clients} | {len(latencies) / args.seconds:.1f} | "
                    f"{p50:.0f} ms | {p95:.0f} ms | {p99:.0f} ms | {errors} |",
                    flush=True,
                )


if __name__ == "__main__":
    sys.exit(main())
