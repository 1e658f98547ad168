"""A bare FastAPI endpoint that only parses the event's JSON: the protocol benchmark's baseline."""

import json
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/_ops/events")
async def events(request: Request) -> dict[str, Any]:
    envelope = json.loads(await request.body())
    return {"id": envelope["id"], "status": "processed"}
