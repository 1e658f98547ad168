"""Event delivery to one plugin: as its own process over loopback, in process, and bare.

1. **Out of process**: the host delivers events to the plugin running as its
   own process (``mode="process"``): queue, signing, ``POST /_ops/events``
   over loopback through the host's pooled client, the plugin checking the
   signature, claiming the event id in its SQLite storage (dedupe), running
   the hook, and marking the id done.
2. **In process**: the same plugin imported into the host: the bus worker
   calls its hook.
3. **Baseline**: a bare FastAPI endpoint that only parses the JSON, under
   uvicorn on loopback, posted the same envelope one at a time with the same
   kind of pooled httpx client (what the wire costs without signing, dedupe
   and dispatch).

For each: events/s with ``EVENTS`` events queued at once (the host delivers
to one plugin one at a time, in order), and the latency of one event from
``bus.emit`` to its hook having run (emit, then wait until delivered), p50
and p99 over ``SAMPLES`` events sent one after another. No target: the
ratios show what signing, dedupe and dispatch cost over the bare wire, and
what leaving the host's process costs.

    python benchmarks/bench_protocol.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _common import median_of, uvicorn_server

from ops_center_sdk.host import create_host_app
from ops_center_sdk.host.plugin_host import PluginHost

APPS = Path(__file__).parent / "apps"
PLUGIN_DIR = APPS / "bench_protocol_plugin"
EVENT = "bench-protocol.tick"
EVENTS = 3000
SAMPLES = 1000
ROUNDS = 3


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def through_host(mode: str, data_dir: Path) -> tuple[list[float], list[float]]:
    """Events/s of each round and per-event latencies, delivered by a host in ``mode``."""
    app = create_host_app(admin_key="bench-key")
    # The plugin never calls the API back: any loopback URL will do.
    host = PluginHost(app, data_dir=data_dir, local_url="http://127.0.0.1:9")
    bus = app.state.bus
    await host.start()
    try:
        await host.install_folder(PLUGIN_DIR, mode=mode)
        for n in range(200):  # warm up: connections, caches, SQLite pages
            await bus.emit(EVENT, {"n": n})
        await host.drain()
        rates = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for n in range(EVENTS):
                await bus.emit(EVENT, {"n": n})
            await host.drain()
            rates.append(EVENTS / (time.perf_counter() - start))
        latencies = []
        for n in range(SAMPLES):
            start = time.perf_counter()
            await bus.emit(EVENT, {"n": n})
            await host.drain()
            latencies.append(time.perf_counter() - start)
        return rates, latencies
    finally:
        await host.shutdown()
        bus.stop()
        app.state.store.close()


async def bare(url: str) -> tuple[list[float], list[float]]:
    """The same envelopes posted one at a time to an endpoint that only parses JSON."""

    def body(n: int) -> bytes:
        envelope = {"id": uuid.uuid4().hex, "name": EVENT, "occurred_at": "", "payload": {"n": n}}
        return json.dumps(envelope, separators=(",", ":")).encode()

    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:

        async def post(n: int) -> None:
            response = await client.post("/_ops/events", content=body(n), headers=headers)
            response.raise_for_status()
            response.json()

        for n in range(200):
            await post(n)
        rates = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for n in range(EVENTS):
                await post(n)
            rates.append(EVENTS / (time.perf_counter() - start))
        latencies = []
        for n in range(SAMPLES):
            start = time.perf_counter()
            await post(n)
            latencies.append(time.perf_counter() - start)
        return rates, latencies


def line(name: str, rates: list[float], latencies: list[float]) -> tuple[float, float]:
    rate, p99 = median_of(rates), percentile(latencies, 0.99)
    print(
        f"   {name:<28} {rate:>8,.0f} events/s   "
        f"p50 {statistics.median(latencies) * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms"
    )
    return rate, p99


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        process = asyncio.run(through_host("process", Path(scratch) / "process"))
        in_process = asyncio.run(through_host("in_process", Path(scratch) / "in-process"))
        with uvicorn_server("events_bare:app", cwd=str(APPS)) as url:
            baseline = asyncio.run(bare(url))

    print(f"Event delivery to one plugin ({EVENTS} events queued x {ROUNDS}; {SAMPLES} one by one)")
    process_rate, process_p99 = line("out of process (loopback)", *process)
    in_rate, in_p99 = line("in process", *in_process)
    bare_rate, bare_p99 = line("bare FastAPI, JSON only", *baseline)
    print(
        f"   out of process vs bare endpoint: {process_rate / bare_rate:.2f}x the events/s, "
        f"{process_p99 / bare_p99:.2f}x the p99 (signing, dedupe, dispatch, queue)"
    )
    print(
        f"   out of process vs in process:    {process_rate / in_rate:.3f}x the events/s, "
        f"{process_p99 / in_p99:.1f}x the p99 (no target)"
    )


if __name__ == "__main__":
    main()
