"""Hook dispatch vs awaiting the handlers directly. Targets: <= 3x for both.

    python benchmarks/bench_hooks.py

1. ``dispatch("device.created", ...)`` to 3 trivial async action handlers,
   with isolation and timeouts in force, vs ``await h1(...); await h2(...);
   await h3(...)``.
2. ``apply_filters("device.data.process", value)`` through 3 filters vs
   ``value = await f1(value)`` ... directly.

For reference it also prints the naive way (``asyncio.timeout`` and a
``try`` around each handler), a dispatch whose handlers suspend once
(``sleep(0)``, so a timer is armed), and what a deep copy of the value before
each filter would cost (the dispatcher makes a shallow one): no targets.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import median_of, verdict

from ops_center_sdk.hooks import HookRegistry

ITERATIONS = 20_000
REPEATS = 7
TARGET = 3.0

DEVICE_ID = "device-1"
DEVICE = {"id": DEVICE_ID, "name": "core-switch", "type": "switch", "site": "lab", "ip": "10.0.0.2"}

# As the host passes it on: the event envelope's payload, already a mapping.
PAYLOAD = {"device_id": DEVICE_ID, "device_data": DEVICE}

Loop = Callable[[int], Awaitable[None]]


async def on_created_1(device_id: str, device_data: dict[str, Any]) -> None:
    return None


async def on_created_2(device_id: str, device_data: dict[str, Any]) -> None:
    return None


async def on_created_3(device_id: str, device_data: dict[str, Any]) -> None:
    return None


async def suspending(device_id: str, device_data: dict[str, Any]) -> None:
    await asyncio.sleep(0)


async def enrich_1(data: dict[str, Any]) -> dict[str, Any]:
    data["enriched"] = True
    return data


async def enrich_2(data: dict[str, Any]) -> dict[str, Any]:
    data["checked"] = True
    return data


async def enrich_3(data: dict[str, Any]) -> dict[str, Any]:
    data["tagged"] = True
    return data


HANDLERS = (on_created_1, on_created_2, on_created_3)
FILTERS = (enrich_1, enrich_2, enrich_3)


def action_loops() -> dict[str, Loop]:
    hooks = HookRegistry("bench")
    for handler in HANDLERS:
        hooks.add_action("device.created", handler)
    slow = HookRegistry("bench-slow")
    for _ in range(3):
        slow.add_action("device.created", suspending)

    async def direct(n: int) -> None:
        for _ in range(n):
            await on_created_1(device_id=DEVICE_ID, device_data=DEVICE)
            await on_created_2(device_id=DEVICE_ID, device_data=DEVICE)
            await on_created_3(device_id=DEVICE_ID, device_data=DEVICE)

    async def dispatch(n: int) -> None:
        for _ in range(n):
            await hooks.dispatch("device.created", device_id=DEVICE_ID, device_data=DEVICE)

    async def dispatch_mapping(n: int) -> None:
        for _ in range(n):
            await hooks.dispatch("device.created", PAYLOAD)

    async def naive(n: int) -> None:
        for _ in range(n):
            for handler in HANDLERS:
                try:
                    async with asyncio.timeout(30):
                        await handler(device_id=DEVICE_ID, device_data=DEVICE)
                except Exception:
                    pass

    async def direct_suspending(n: int) -> None:
        for _ in range(n):
            for _ in range(3):
                await suspending(device_id=DEVICE_ID, device_data=DEVICE)

    async def dispatch_suspending(n: int) -> None:
        for _ in range(n):
            await slow.dispatch("device.created", device_id=DEVICE_ID, device_data=DEVICE)

    return {
        "direct": direct,
        "dispatch": dispatch,
        "dispatch_mapping": dispatch_mapping,
        "naive": naive,
        "direct_suspending": direct_suspending,
        "dispatch_suspending": dispatch_suspending,
    }


def filter_loops() -> dict[str, Loop]:
    hooks = HookRegistry("bench")
    for handler in FILTERS:
        hooks.add_filter("device.data.process", handler)

    async def direct(n: int) -> None:
        for _ in range(n):
            value = dict(DEVICE)
            value = await enrich_1(value)
            value = await enrich_2(value)
            value = await enrich_3(value)

    async def apply(n: int) -> None:
        for _ in range(n):
            value = dict(DEVICE)
            value = await hooks.apply_filters("device.data.process", value)

    async def direct_deep_copies(n: int) -> None:
        for _ in range(n):
            value = dict(DEVICE)
            value = await enrich_1(copy.deepcopy(value))
            value = await enrich_2(copy.deepcopy(value))
            value = await enrich_3(copy.deepcopy(value))

    return {"direct": direct, "apply_filters": apply, "deep_copies": direct_deep_copies}


async def per_call(loop: Loop, iterations: int) -> float:
    """Seconds per iteration of ``loop``, over ``iterations`` runs in one coroutine."""
    # Let the event loop purge the timers an earlier loop cancelled (the naive
    # way leaves thousands in its heap) and start from a collected heap.
    await asyncio.sleep(0)
    gc.collect()
    start = time.perf_counter()
    await loop(iterations)
    return (time.perf_counter() - start) / iterations


async def measure(loops: dict[str, Loop], iterations: int) -> dict[str, list[float]]:
    """Per-iteration times of each loop, one sample per repeat; the loops take turns."""
    for loop in loops.values():  # warm-up
        await loop(iterations // 10)
    samples: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(REPEATS):
        for name, loop in loops.items():
            samples[name].append(await per_call(loop, iterations))
    return samples


def ratio_of(samples: dict[str, list[float]], subject: str, baseline: str) -> float:
    """Median of the per-repeat ratios: each pair was measured side by side."""
    return median_of([s / b for s, b in zip(samples[subject], samples[baseline], strict=True)])


def show(label: str, samples: list[float], baseline: list[float]) -> None:
    seconds, base = median_of(samples), median_of(baseline)
    print(f"  {label:<44} {seconds * 1e6:8.2f} us  {seconds / base:6.2f}x")


async def run() -> bool:
    ok = True

    print("1. device.created to 3 trivial async action handlers")
    actions = await measure(action_loops(), ITERATIONS)
    base = actions["direct"]
    show("await h1(...); await h2(...); await h3(...)", base, base)
    show("hooks.dispatch(event, device_id=..., ...)", actions["dispatch"], base)
    show("hooks.dispatch(event, payload_mapping)", actions["dispatch_mapping"], base)
    show("naive: asyncio.timeout + try per handler", actions["naive"], base)
    ratio = ratio_of(actions, "dispatch", "direct")
    print(f"  dispatch ratio {ratio:.2f}x  {verdict(ratio, TARGET, higher_is_better=False)}")
    ok &= ratio <= TARGET
    print("  for reference, handlers that suspend once (sleep(0)): a timer per handler")
    base = actions["direct_suspending"]
    show("await h(...) x3", base, base)
    show("hooks.dispatch(...)", actions["dispatch_suspending"], base)

    print("2. device.data.process through 3 filters")
    filters = await measure(filter_loops(), ITERATIONS)
    base = filters["direct"]
    show("value = await f1(value) ... f3", base, base)
    show("hooks.apply_filters(...)", filters["apply_filters"], base)
    show("for reference: a deep copy before each filter", filters["deep_copies"], base)
    ratio = ratio_of(filters, "apply_filters", "direct")
    print(f"  apply_filters ratio {ratio:.2f}x  {verdict(ratio, TARGET, higher_is_better=False)}")
    ok &= ratio <= TARGET
    return ok


def main() -> None:
    ok = asyncio.run(run())
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
