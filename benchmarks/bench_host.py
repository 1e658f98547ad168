"""The local Ops-Center under load, with one in-process plugin.

1. ``POST /api/v1/devices`` with a plugin subscribed to ``device.created``:
   requests/s under wrk (or a Python load generator), against the same host
   with no plugin; then, while wrk keeps posting, the latency from sending a
   POST to the plugin's hook having run (the body carries the send time, the
   hook notes when it runs), p50/p99, next to the POST's own response time.
2. ``GET /plugins/{id}/status`` through the host vs the same plugin app served
   alone (``plugin.create_app()`` under uvicorn). Target: >= 0.8x.

Everything runs under uvicorn on 127.0.0.1, one server at a time.

    python benchmarks/bench_host.py
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _common import best_ratio, requests_per_second, uvicorn_server, verdict

APPS = Path(__file__).parent / "apps"
PLUGIN_DIR = APPS / "bench_host_plugin"
PLUGIN = "bench-host-plugin"
STATUS = f"/plugins/{PLUGIN}/status"
KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LATENCY_REQUESTS = 1000
LATENCY_CONNECTIONS = 2

POST_LUA = """
wrk.method = "POST"
wrk.body = '{"name": "bench device", "type": "server"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def post_rps(url: str, *, seconds: int) -> float:
    """Requests/s of POST /api/v1/devices: wrk with a Lua script, else a Python client."""
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(POST_LUA % KEY)
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", script.name, url + "/api/v1/devices"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        Path(script.name).unlink()
        non_2xx = [line for line in out.splitlines() if "Non-2xx" in line]
        if non_2xx:
            raise RuntimeError(f"wrk got errors: {non_2xx[0]}")
        return float(
            next(ln for ln in out.splitlines() if ln.startswith("Requests/sec")).split()[1]
        )
    return asyncio.run(_python_posts(url, seconds=seconds))


async def _python_posts(url: str, *, seconds: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                (
                    await client.post("/api/v1/devices", json={"name": "bench device"})
                ).raise_for_status()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(32)))
        return done / (time.perf_counter() - start)


async def hook_latencies(
    url: str, *, requests: int, connections: int
) -> tuple[list[float], list[float]]:
    """Send timed POSTs from ``connections`` workers; (POST -> hook, POST -> response) seconds."""
    responses: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits) as client:
        await client.delete(f"/plugins/{PLUGIN}/latencies")

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                sent_at = time.time()
                body = {"name": "timed device", "metadata": {"sent_at": sent_at}}
                (await client.post("/api/v1/devices", json=body)).raise_for_status()
                responses.append(time.time() - sent_at)

        await asyncio.gather(*(worker() for _ in range(connections)))
        deadline = time.monotonic() + 30
        while True:
            seen = (await client.get(f"/plugins/{PLUGIN}/latencies")).json()
            if seen["count"] >= requests or time.monotonic() > deadline:
                return list(seen["seconds"]), responses
            await asyncio.sleep(0.05)


def latency_under_load(url: str) -> tuple[list[float], list[float], str]:
    """Timed POSTs from a light probe while wrk keeps the host busy with POSTs.

    The probe's send time rides in the body, so the latency counts from the
    client's send to the hook; wrk (C, separate process) makes the load without
    adding the Python client's own pauses to the measurement. Without wrk the
    probe itself is the load (more connections, and its own overhead included).
    """
    if not shutil.which("wrk"):
        hooks, responses = asyncio.run(hook_latencies(url, requests=2000, connections=16))
        return hooks, responses, "load: the Python probe itself, 16 connections"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(POST_LUA % KEY)
    load = subprocess.Popen(
        ["wrk", "-t1", "-c16", "-d60s", "--latency", "-s", script.name, url + "/api/v1/devices"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        hooks, responses = asyncio.run(
            hook_latencies(url, requests=LATENCY_REQUESTS, connections=LATENCY_CONNECTIONS)
        )
    finally:
        load.send_signal(signal.SIGINT)
        out, _ = load.communicate(timeout=30)
        Path(script.name).unlink()
    rps = next(ln for ln in out.splitlines() if ln.startswith("Requests/sec")).split()[1]
    p99 = next(ln for ln in out.splitlines() if ln.strip().startswith("99%")).split()[1]
    return hooks, responses, f"load: wrk, 16 connections, {float(rps):,.0f} req/s, its p99 {p99}"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        quiet = {"OPS_CENTER_LOG_LEVEL": "WARNING"}

        def host_env(name: str, *, plugin: bool) -> dict[str, str]:
            data = Path(scratch) / name
            env = {**quiet, "BENCH_DATA": str(data)}
            if plugin:
                env["BENCH_PLUGIN"] = str(PLUGIN_DIR)
            return env

        # 1. POST /api/v1/devices with a subscribed plugin, against no plugin.
        def measure_posts() -> tuple[float, float]:
            with uvicorn_server(
                "host_app:app", cwd=str(APPS), env=host_env("p", plugin=True)
            ) as base:
                post_rps(base, seconds=1)
                with_plugin = post_rps(base, seconds=4)
            with uvicorn_server(
                "host_app:app", cwd=str(APPS), env=host_env("b", plugin=False)
            ) as base:
                post_rps(base, seconds=1)
                without = post_rps(base, seconds=4)
            return with_plugin, without

        with_plugin, without, post_ratio = best_ratio(measure_posts, repeats=3)
        with uvicorn_server("host_app:app", cwd=str(APPS), env=host_env("l", plugin=True)) as base:
            hooks, responses, load = latency_under_load(base)

        # 2. The plugin's route through the host vs the plugin app alone.
        def measure_route() -> tuple[float, float]:
            with uvicorn_server(
                "host_app:app", cwd=str(APPS), env=host_env("r", plugin=True)
            ) as base:
                # plugin routes through the host need a key, like the REST API
                requests_per_second(base + STATUS, seconds=1, headers=AUTH)
                hosted = requests_per_second(base + STATUS, seconds=4, headers=AUTH)
            alone_env = {**quiet, "OPS_CENTER_DATA_DIR": str(Path(scratch) / "alone")}
            with uvicorn_server("main:app", cwd=str(PLUGIN_DIR), env=alone_env) as base:
                requests_per_second(base + STATUS, seconds=1, headers=AUTH)
                alone = requests_per_second(base + STATUS, seconds=4, headers=AUTH)
            return hosted, alone

        hosted, alone, route_ratio = best_ratio(measure_route, repeats=3)

    print("1. POST /api/v1/devices (32 connections)")
    print(f"   with a plugin subscribed to device.created: {with_plugin:,.0f} req/s")
    print(f"   same host, no plugin:                       {without:,.0f} req/s")
    print(f"   ratio {post_ratio:.2f}x (no target: the cost of filters + dispatch per write)")
    print(f"   POST -> hook ran, for {len(hooks)} timed POSTs sent during the {load}:")
    if hooks:
        print(
            f"     p50 {statistics.median(hooks) * 1000:.1f} ms   "
            f"p99 {percentile(hooks, 0.99) * 1000:.1f} ms"
        )
    print(
        f"   POST -> response (same run): p50 {statistics.median(responses) * 1000:.1f} ms   "
        f"p99 {percentile(responses, 0.99) * 1000:.1f} ms"
    )
    print(f"2. GET {STATUS}")
    print(f"   through the host:        {hosted:,.0f} req/s")
    print(f"   plugin app served alone: {alone:,.0f} req/s")
    print(f"   ratio {route_ratio:.2f}x  {verdict(route_ratio, 0.8, higher_is_better=True)}")


if __name__ == "__main__":
    main()
