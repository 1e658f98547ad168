from ops_center_sdk import Plugin
from typing import Dict, Any

plugin = Plugin(
    id="spec-style-plugin",
    name="Spec Style Plugin",
    version="1.0.0",
    description="Tracks devices and raises alerts when they go away",
    author="A Spec Reader",
    category="monitoring"
)

app = plugin.create_app()


@app.on_event("startup")
async def startup():
    plugin.logger.info("Spec style plugin starting")
    await plugin.storage.increment("startups")


@app.on_event("shutdown")
async def shutdown():
    plugin.logger.info("Spec style plugin stopping")
    await plugin.storage.increment("shutdowns")


@plugin.hook("device.created", priority=10)
async def on_device_created(device_id: str, device_data: Dict[str, Any]):
    devices = await plugin.api.devices.list(page_size=1000)
    await plugin.storage.set("known_devices", len(devices))


@plugin.hook("device.deleted")
async def on_device_deleted(device_id: str, device_data: dict):
    await plugin.storage.set(f"deleted:{device_id}", device_data)
    await plugin.api.alerts.create({
        "device_id": device_id,
        "title": f"Device {device_data.get('name', device_id)} was deleted",
    })


@plugin.route("/status", methods=["GET"])
async def get_status():
    return {
        "startups": await plugin.storage.get("startups", default=0),
        "shutdowns": await plugin.storage.get("shutdowns", default=0),
        "known_devices": await plugin.storage.get("known_devices"),
        "deleted": await plugin.storage.list_keys("deleted:*"),
    }
