"""Shared bits of the benchmark scripts: timing, free ports, servers, reporting."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median_of(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def verdict(ratio: float, target: float, *, higher_is_better: bool) -> str:
    ok = ratio >= target if higher_is_better else ratio <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'PASS' if ok else 'FAIL'} (target {sign} {target}x)"


@contextmanager
def uvicorn_server(app: str, *, cwd: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``uvicorn app`` on a free loopback port; yields its base URL; stops it by PID."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(port, process)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start in {timeout}s")


def requests_per_second(
    url: str,
    *,
    seconds: int = 5,
    connections: int = 32,
    headers: dict[str, str] | None = None,
) -> float:
    """Throughput of GET ``url`` (sending ``headers``): wrk when installed, else Python."""
    sent = headers or {}
    if shutil.which("wrk"):
        flags = [part for name, value in sent.items() for part in ("-H", f"{name}: {value}")]
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *flags, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in out.splitlines():
            if line.startswith("Requests/sec:"):
                return float(line.split()[1])
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return _python_load(url, seconds=seconds, connections=connections, headers=sent)


def _python_load(url: str, *, seconds: int, connections: int, headers: dict[str, str]) -> float:
    import asyncio

    import httpx

    async def run() -> float:
        done = 0
        stop = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits, headers=headers) as client:

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    (await client.get(url)).raise_for_status()
                    done += 1

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return done / (time.perf_counter() - start)

    return asyncio.run(run())


def time_command(argv: Sequence[str], runs: int) -> float:
    """Median wall time of running ``argv`` ``runs`` times (seconds)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return median_of(samples)


def best_ratio(
    measure: Callable[[], tuple[float, float]], repeats: int
) -> tuple[float, float, float]:
    """Run ``measure`` (subject, baseline) ``repeats`` times; median of each and their ratio."""
    subjects, baselines = [], []
    for _ in range(repeats):
        subject, baseline = measure()
        subjects.append(subject)
        baselines.append(baseline)
    s, b = median_of(subjects), median_of(baselines)
    return s, b, s / b
