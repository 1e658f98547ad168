"""The same handler as a bare FastAPI route: the route benchmark's baseline."""

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.get("/plugins/bench-plugin/status")
async def get_status() -> dict[str, Any]:
    return {"status": "running", "version": "1.0.0", "devices_tracked": 3}
