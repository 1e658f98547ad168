"""A plugin route through ``create_app()`` vs the same handler as a bare FastAPI route.

Both apps run under uvicorn on loopback, one at a time, alternating; the load
comes from wrk when installed (else a Python client). Target: >= 0.8x.

    python benchmarks/bench_routes.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import best_ratio, requests_per_second, uvicorn_server, verdict

HERE = Path(__file__).parent / "apps"
PATH = "/plugins/bench-plugin/status"


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        env = {"OPS_CENTER_DATA_DIR": data, "OPS_CENTER_LOG_LEVEL": "WARNING"}

        def measure() -> tuple[float, float]:
            with uvicorn_server("route_plugin:app", cwd=str(HERE), env=env) as base:
                requests_per_second(base + PATH, seconds=1)
                plugin_rps = requests_per_second(base + PATH, seconds=4)
            with uvicorn_server("route_bare:app", cwd=str(HERE), env=env) as base:
                requests_per_second(base + PATH, seconds=1)
                bare_rps = requests_per_second(base + PATH, seconds=4)
            return plugin_rps, bare_rps

        plugin_rps, bare_rps, ratio = best_ratio(measure, repeats=3)
    print(f"plugin route via create_app(): {plugin_rps:,.0f} req/s")
    print(f"bare FastAPI route:            {bare_rps:,.0f} req/s")
    print(f"ratio {ratio:.2f}x  {verdict(ratio, 0.8, higher_is_better=True)}")


if __name__ == "__main__":
    main()
