"""The API client vs raw httpx: 2,000 sequential GETs of one device.

Both clients hit the same local Ops-Center (``create_host_app`` under uvicorn
on 127.0.0.1, started as a subprocess and stopped by PID). The baseline is one
reused ``httpx.AsyncClient`` doing the same work per call (send, check the
status, decode the JSON). The two alternate, three rounds, medians compared.
Target: the client keeps >= 0.8x of raw httpx's requests per second.

    python benchmarks/bench_api_client.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import best_ratio, uvicorn_server, verdict

from ops_center_sdk.api import APIClient

HERE = Path(__file__).parent
KEY = "bench-admin-key"
DEVICE = "bench-device"
REQUESTS = 2_000
WARMUP = 200


def __getattr__(name: str) -> Any:
    # uvicorn imports "bench_api_client:app" in the server process only.
    if name == "app":
        from ops_center_sdk.host import create_host_app

        return create_host_app(
            data_dir=Path(os.environ["OPS_CENTER_BENCH_DATA"]),
            admin_key=os.environ["OPS_CENTER_BENCH_KEY"],
        )
    raise AttributeError(name)


async def client_rate(base: str) -> float:
    async with APIClient(base, KEY) as api:
        for _ in range(WARMUP):
            await api.devices.get(DEVICE)
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await api.devices.get(DEVICE)
        return REQUESTS / (time.perf_counter() - start)


async def raw_rate(base: str) -> float:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=base + "/api/v1", headers=headers) as http:
        for _ in range(WARMUP):
            (await http.get(f"/devices/{DEVICE}")).raise_for_status()
        start = time.perf_counter()
        for _ in range(REQUESTS):
            response = await http.get(f"/devices/{DEVICE}")
            response.raise_for_status()
            response.json()
        return REQUESTS / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        env = {"OPS_CENTER_BENCH_DATA": data, "OPS_CENTER_BENCH_KEY": KEY}
        with uvicorn_server("bench_api_client:app", cwd=str(HERE), env=env) as base:
            httpx.post(
                f"{base}/api/v1/devices",
                json={"id": DEVICE, "name": "Bench", "type": "server"},
                headers={"Authorization": f"Bearer {KEY}"},
            ).raise_for_status()
            turn = 0

            def measure() -> tuple[float, float]:
                nonlocal turn
                turn += 1
                if turn % 2:
                    return asyncio.run(client_rate(base)), asyncio.run(raw_rate(base))
                raw = asyncio.run(raw_rate(base))
                return asyncio.run(client_rate(base)), raw

            client_rps, raw_rps, ratio = best_ratio(measure, repeats=3)
    print(f"{REQUESTS:,} sequential GET /api/v1/devices/{{id}} on loopback, median of 3 rounds")
    print(f"APIClient.devices.get:     {client_rps:,.0f} req/s")
    print(f"raw httpx (one client):    {raw_rps:,.0f} req/s")
    print(f"ratio {ratio:.2f}x  {verdict(ratio, 0.8, higher_is_better=True)}")


if __name__ == "__main__":
    main()
