"""Device Anomaly Detector: the Ops-Center SDK's example plugin.

For every device and numeric metric it keeps a baseline: an exponentially
weighted moving mean and variance (EWMA), updated with each reading from
``device.metrics_updated``. A reading more than ``threshold`` standard
deviations away from the baseline is an anomaly: the plugin records it and
raises an alert through the Ops-Center API. Readings are also kept in a
bounded window, and a scheduled task rebuilds each baseline from its window
(leaving out the anomalies), so the baseline follows slow drifts without
being dragged by spikes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ops_center_sdk import Plugin

plugin = Plugin(
    id="device-anomaly-detector",
    name="Device Anomaly Detector",
    version="1.0.0",
    description="Learns a rolling baseline per device and metric and raises an alert "
    "when a reading strays from it.",
    author="Ops-Center SDK team",
    category="monitoring",
)

RETRAIN_TASK = "retrain_baselines"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def baseline_key(device_id: str, metric: str) -> str:
    return f"baseline:{device_id}:{metric}"


def window_key(device_id: str, metric: str) -> str:
    return f"window:{device_id}:{metric}"


def deviation(value: float, baseline: dict[str, Any]) -> float:
    """How many standard deviations ``value`` lies from the baseline's mean."""
    std = math.sqrt(max(baseline["variance"], 0.0))
    if std == 0.0:
        return 0.0 if value == baseline["mean"] else math.inf
    return abs(value - baseline["mean"]) / std


def updated_baseline(baseline: dict[str, Any] | None, value: float, alpha: float) -> dict[str, Any]:
    """The EWMA baseline after one more normal reading."""
    if baseline is None:
        return {"mean": value, "variance": 0.0, "count": 1, "updated_at": now_iso()}
    diff = value - baseline["mean"]
    increment = alpha * diff
    return {
        "mean": baseline["mean"] + increment,
        "variance": (1 - alpha) * (baseline["variance"] + diff * increment),
        "count": baseline["count"] + 1,
        "updated_at": now_iso(),
    }


def trained_baseline(values: list[float], threshold: float) -> dict[str, Any] | None:
    """A baseline from a window of readings, leaving out those beyond ``threshold``."""
    if len(values) < 2:
        return None
    kept = values
    for _ in range(3):
        mean = sum(kept) / len(kept)
        variance = sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)
        std = math.sqrt(variance)
        inliers = [v for v in kept if std == 0 or abs(v - mean) / std <= threshold]
        if len(inliers) == len(kept) or len(inliers) < 2:
            break
        kept = inliers
    return {"mean": mean, "variance": variance, "count": len(kept), "updated_at": now_iso()}


# ==================== Lifecycle Hooks ====================


@plugin.on_install
async def on_install() -> None:
    plugin.logger.info("Installing Device Anomaly Detector")
    await plugin.storage.set("installed_at", now_iso())
    await plugin.storage.set("anomaly_count", 0)


@plugin.on_enable
async def on_enable() -> None:
    plugin.logger.info("Starting anomaly detection")
    await plugin.scheduler.schedule(
        cron=plugin.config.get("retrain_cron", default="0 * * * *"),
        task_name=RETRAIN_TASK,
        handler=retrain_baselines,
    )


@plugin.on_disable
async def on_disable() -> None:
    plugin.logger.info("Stopping anomaly detection")
    await plugin.scheduler.cancel_all()


# ==================== Event Hooks ====================


@plugin.hook("device.created", priority=10)
async def on_device_created(device_id: str, device_data: dict[str, Any]) -> None:
    """Start tracking a new device."""
    plugin.logger.info(f"Tracking new device: {device_id}")
    await plugin.storage.set(
        f"device:{device_id}",
        {"name": device_data.get("name"), "tracked_at": now_iso(), "updated_at": None},
    )


@plugin.filter_hook("device.data.process", priority=10)
async def mark_monitored(data: dict[str, Any]) -> dict[str, Any]:
    """Record on every device stored that this plugin watches its metrics."""
    data["anomaly_detection"] = {
        "enabled": bool(plugin.config.get("enabled", default=True)),
        "threshold": float(plugin.config.get("threshold", default=3.0)),
    }
    return data


@plugin.hook("device.deleted")
async def on_device_deleted(device_id: str, device_data: dict[str, Any]) -> None:
    """Forget a deleted device (``device_data`` is its record as it was) and what was learnt."""
    plugin.logger.info(f"Forgetting deleted device: {device_data.get('name', device_id)}")
    keys = [
        *await plugin.storage.list_keys(f"baseline:{device_id}:*"),
        *await plugin.storage.list_keys(f"window:{device_id}:*"),
    ]
    for key in [*keys, f"device:{device_id}"]:
        await plugin.storage.delete(key)


@plugin.hook("device.metrics_updated", priority=10)
async def on_metrics_updated(device_id: str, metrics: dict[str, Any]) -> None:
    """Judge each numeric reading against its baseline, then learn from it."""
    if not plugin.config.get("enabled", default=True):
        return
    threshold = float(plugin.config.get("threshold", default=3.0))
    alpha = float(plugin.config.get("alpha", default=0.2))
    min_samples = int(plugin.config.get("min_samples", default=10))
    window = int(plugin.config.get("window", default=200))
    readings = {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
    if not readings:
        return
    keys = [
        key
        for name in readings
        for key in (baseline_key(device_id, name), window_key(device_id, name))
    ]
    stored = await plugin.storage.get_many(keys)
    updates: dict[str, Any] = {}
    for name, value in readings.items():
        baseline = stored.get(baseline_key(device_id, name))
        samples: list[float] = stored.get(window_key(device_id, name), [])
        updates[window_key(device_id, name)] = [*samples, value][-window:]
        if baseline is not None and baseline["count"] >= min_samples:
            sigmas = deviation(value, baseline)
            if sigmas > threshold:
                await report_anomaly(device_id, name, value, baseline, sigmas)
                continue
        updates[baseline_key(device_id, name)] = updated_baseline(baseline, value, alpha)
    device = await plugin.storage.get(f"device:{device_id}", default={"tracked_at": now_iso()})
    updates[f"device:{device_id}"] = {**device, "updated_at": now_iso()}
    await plugin.storage.set_many(updates)


async def report_anomaly(
    device_id: str, metric: str, value: float, baseline: dict[str, Any], sigmas: float
) -> None:
    critical = sigmas >= float(plugin.config.get("critical_threshold", default=6.0))
    shown = "inf" if math.isinf(sigmas) else f"{sigmas:.1f}"
    plugin.logger.warning(f"Anomaly on {device_id}: {metric}={value} ({shown} sigma)")
    count = await plugin.storage.increment("anomaly_count")
    await plugin.storage.set(
        f"anomaly:{count:08d}",
        {
            "device_id": device_id,
            "metric": metric,
            "value": value,
            "expected": baseline["mean"],
            "sigmas": None if math.isinf(sigmas) else sigmas,
            "detected_at": now_iso(),
        },
        ttl=7 * 24 * 3600,
    )
    try:
        await plugin.api.alerts.create(
            {
                "device_id": device_id,
                "severity": "critical" if critical else "warning",
                "title": f"Anomalous {metric} on {device_id}",
                "message": f"{metric} is {value:g}, expected about {baseline['mean']:.4g} "
                f"({shown} standard deviations away)",
            }
        )
    except Exception as exc:
        plugin.logger.error(f"Could not raise the alert for {device_id}: {exc}")


# ==================== Custom API Routes ====================


@plugin.route("/status", methods=["GET"])
async def get_status() -> dict[str, Any]:
    """GET /plugins/device-anomaly-detector/status"""
    devices = await plugin.storage.list_keys("device:*")
    return {
        "status": "running",
        "version": plugin.metadata.version,
        "devices_tracked": len(devices),
        "anomalies_detected": await plugin.storage.get("anomaly_count", default=0),
        "last_retrained_at": await plugin.storage.get("last_retrained_at"),
    }


@plugin.route("/devices/{device_id}/stats", methods=["GET"])
async def get_device_stats(device_id: str) -> Any:
    """GET /plugins/device-anomaly-detector/devices/{device_id}/stats"""
    device = await plugin.storage.get(f"device:{device_id}")
    if not device:
        return {"error": "Device not found"}, 404
    keys = await plugin.storage.list_keys(f"baseline:{device_id}:*")
    baselines = await plugin.storage.get_many(keys)
    return {
        "device_id": device_id,
        "tracked_since": device.get("tracked_at"),
        "last_updated": device.get("updated_at"),
        "baselines": {
            key.rsplit(":", 1)[1]: {
                "mean": value["mean"],
                "std": math.sqrt(max(value["variance"], 0.0)),
                "samples": value["count"],
            }
            for key, value in baselines.items()
        },
    }


@plugin.route("/anomalies", methods=["GET"])
async def list_anomalies(device_id: str | None = None, limit: int = 50) -> Any:
    """GET /plugins/device-anomaly-detector/anomalies?device_id=...&limit=50"""
    if limit < 1:
        return {"error": "limit must be at least 1"}, 422
    keys = await plugin.storage.list_keys("anomaly:*")
    found = await plugin.storage.get_many(keys)
    newest_first = [found[key] for key in reversed(keys) if key in found]
    items = [a for a in newest_first if device_id is None or a["device_id"] == device_id]
    return {"anomalies": items[:limit], "count": len(items[:limit])}


# ==================== Background Tasks ====================


async def retrain_baselines() -> None:
    """Rebuild every baseline from its window of readings, leaving out anomalies."""
    threshold = float(plugin.config.get("threshold", default=3.0))
    windows = await plugin.storage.list_keys("window:*")
    fresh: dict[str, Any] = {}
    for key, values in (await plugin.storage.get_many(windows)).items():
        _, device_id, metric = key.split(":", 2)
        baseline = trained_baseline(values, threshold)
        if baseline is not None:
            fresh[baseline_key(device_id, metric)] = baseline
    if fresh:
        await plugin.storage.set_many(fresh)
    await plugin.storage.set("last_retrained_at", now_iso())
    plugin.logger.info(f"Retrained {len(fresh)} baselines")


# ==================== Export FastAPI App ====================

app = plugin.create_app()
