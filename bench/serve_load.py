"""Load test of `emolens serve` on loopback: N concurrent clients posting a photo for a while, each sending its
next request as soon as the last is answered.

Reports requests/s, p50/p95/p99 latency and errors for each server setting. Target (issue): 32 clients, 30 s,
zero errors and p95 under 100 ms on 2 cores. The clients run on the same machine as the server.

Usage: python bench/serve_load.py [--clients 1,8,32] [--seconds 30] [--workers 1,2] [--photo samples/astronaut.png]
       [--detectors yunet,haar]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emolens", "serve", "--port", str(port), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server with {args} did not start")


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
                    answer = await client.post(f"{url}/v1/predict", content=photo, headers={"Content-Type": "image/png"})
                    ok = answer.status_code == 200 and answer.json()["faces"]
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8,32", help="comma-separated numbers of concurrent clients to try")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to try")
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "astronaut.png")
    parser.add_argument("--detectors", default="yunet,haar", help="comma-separated detector names to try (default yunet,haar)")
    args = parser.parse_args()
    photo = args.photo.read_bytes()
    settings = [
        (f"{detector}, {w} worker(s)", ["--workers", w, "--detector", detector])
        for detector in args.detectors.split(",") for w in args.workers.split(",")
    ]  # fmt: skip
    print(f"{args.seconds:.0f} s per row, {args.photo.name} ({len(photo):,} bytes), loopback")
    print()
    print("| server | clients | requests/s | p50 | p95 | p99 | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, extra in settings:
        process, url = start(extra)
        try:
            for clients in (int(n) for n in args.clients.split(",")):
                asyncio.run(load(url, photo, clients, 3.0))  # warm-up
                latencies, errors = asyncio.run(load(url, photo, clients, args.seconds))
                p50, p95, p99 = (1000 * np.percentile(latencies, q) for q in (50, 95, 99))
                print(
                    f"| {label} | {clients} | {len(latencies) / args.seconds:.1f} | {p50:.0f} ms | {p95:.0f} ms | {p99:.0f} ms | {errors} |",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
