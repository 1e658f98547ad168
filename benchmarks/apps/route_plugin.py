"""A plugin whose one route the route benchmark calls through ``create_app()``."""

from typing import Any

from ops_center_sdk import Plugin

plugin = Plugin(id="bench-plugin", name="Bench", version="1.0.0", root=".")


@plugin.route("/status", methods=["GET"])
async def get_status() -> dict[str, Any]:
    return {"status": "running", "version": "1.0.0", "devices_tracked": 3}


app = plugin.create_app()
