"""Storage benchmarks, against baselines measured in the same run.

Run from a clone: ``python benchmarks/bench_storage.py`` (with the package
installed, or straight from ``src/``).

1. SQLite backend: ``set`` + ``get`` through :class:`Storage` against raw
   sqlite3 doing the same durable single-key writes (WAL, synchronous=FULL,
   the same table, INSERT OR REPLACE + SELECT, autocommit).
   Target: at least 0.5x raw sqlite3's rate.
2. ``list_keys("prefix:*")`` over 100,000 keys of which 100 match.
   Target: under 5 ms. A pattern that must read the whole namespace is
   timed too, to show the index range at work.

Each figure is the median of several runs. The exit status is 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from ops_center_sdk.storage import SqliteStorage, Storage
except ImportError:  # a fresh clone without the package installed: use its src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from ops_center_sdk.storage import SqliteStorage, Storage

RATIO_TARGET = 0.5
LIST_KEYS_TARGET_MS = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT,
    key TEXT,
    value TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID
"""
RAW_PUT = "INSERT OR REPLACE INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)"
RAW_GET = "SELECT value, expires_at FROM kv WHERE namespace = ? AND key = ?"


def device(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"web-{i}", "status": "online", "cpu": 0.25}


def raw_pairs_per_second(path: Path, pairs: int) -> float:
    """set + get pairs per second with raw sqlite3, durable like the backend."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute(SCHEMA)
    # The same bytes the facade stores, made up front: the baseline does no JSON.
    texts = [f'{{"id":{i},"name":"web-{i}","status":"online","cpu":0.25}}' for i in range(pairs)]
    gc.collect()
    started = time.perf_counter()
    for i in range(pairs):
        key = f"device:{i % 100}"
        db.execute(RAW_PUT, ("bench", key, texts[i], None))
        db.execute(RAW_GET, ("bench", key)).fetchone()
    elapsed = time.perf_counter() - started
    db.close()
    return pairs / elapsed


async def facade_pairs_per_second(path: Path, pairs: int) -> float:
    """set + get pairs per second through Storage on the SQLite backend."""
    storage = Storage(SqliteStorage(path), "bench")
    values = [device(i) for i in range(pairs)]
    gc.collect()
    started = time.perf_counter()
    for i in range(pairs):
        key = f"device:{i % 100}"
        await storage.set(key, values[i])
        await storage.get(key)
    elapsed = time.perf_counter() - started
    await storage.close()
    return pairs / elapsed


def bench_set_get(folder: Path, pairs: int, runs: int) -> bool:
    raw: list[float] = []
    facade: list[float] = []
    for run in range(runs):
        # Alternate which goes first so neither always gets the warmer cache.
        order = ["raw", "facade"] if run % 2 == 0 else ["facade", "raw"]
        for which in order:
            path = folder / f"{which}-{run}.db"
            if which == "raw":
                raw.append(raw_pairs_per_second(path, pairs))
            else:
                facade.append(asyncio.run(facade_pairs_per_second(path, pairs)))
    raw_rate = statistics.median(raw)
    facade_rate = statistics.median(facade)
    ratio = facade_rate / raw_rate
    overhead_us = (1 / facade_rate - 1 / raw_rate) * 1e6
    ok = ratio >= RATIO_TARGET
    print(f"1. SQLite set+get, durable (WAL, synchronous=FULL): {pairs} pairs x {runs} runs")
    print(f"   raw sqlite3        {raw_rate:10,.0f} pairs/s  (median)")
    print(f"   Storage facade     {facade_rate:10,.0f} pairs/s  (median)")
    print(f"   overhead           {overhead_us:10.1f} us per set+get")
    print(f"   ratio              {ratio:10.2f}x    target >= {RATIO_TARGET}x  ", verdict(ok))
    return ok


async def time_list_keys(storage: Storage, pattern: str, runs: int) -> tuple[float, int]:
    """Median milliseconds of ``list_keys(pattern)`` and how many keys it found."""
    times: list[float] = []
    found = 0
    for _ in range(runs):
        started = time.perf_counter()
        found = len(await storage.list_keys(pattern))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), found


async def bench_list_keys(folder: Path, total: int, matching: int, runs: int) -> bool:
    storage = Storage(SqliteStorage(folder / "list-keys.db"), "bench")
    others = total - matching
    # Non-matching keys on both sides of the range, so only an index range is cheap.
    keys = [f"a:{i:06d}" for i in range(others // 2)]
    keys += [f"z:{i:06d}" for i in range(others - others // 2)]
    keys += [f"prefix:{i:03d}" for i in range(matching)]
    for start in range(0, len(keys), 10_000):
        await storage.set_many({key: {"n": 1} for key in keys[start : start + 10_000]})

    median_ms, found = await time_list_keys(storage, "prefix:*", runs)
    scan_ms, scan_found = await time_list_keys(storage, "*prefix:*", max(3, runs // 5))
    await storage.close()
    ok = median_ms < LIST_KEYS_TARGET_MS and found == matching == scan_found
    print(f'2. list_keys("prefix:*") over {total:,} keys, {matching} match: {runs} runs')
    print(
        f"   index range        {median_ms:10.2f} ms      target < {LIST_KEYS_TARGET_MS} ms  ",
        verdict(ok),
    )
    print(f'   whole namespace    {scan_ms:10.2f} ms      ("*prefix:*", for comparison)')
    print(f"   matches            {found:10d}")
    return ok


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="set+get pairs per run")
    parser.add_argument("--runs", type=int, default=5, help="runs of the set+get benchmark")
    parser.add_argument("--list-runs", type=int, default=20, help="runs of list_keys")
    parser.add_argument("--keys", type=int, default=100_000, help="keys stored for list_keys")
    parser.add_argument("--dir", type=Path, help="folder for the database files (default: temp)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-storage-") as folder:
        print(
            f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, files in {folder}"
        )
        set_get_ok = bench_set_get(Path(folder), args.pairs, args.runs)
        list_ok = asyncio.run(bench_list_keys(Path(folder), args.keys, 100, args.list_runs))
    return 0 if set_get_ok and list_ok else 1


if __name__ == "__main__":
    sys.exit(main())
