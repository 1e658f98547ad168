"""The protocol benchmark's plugin: one trivial action hook on its own event."""

from ops_center_sdk import Plugin

plugin = Plugin(id="bench-protocol", version="1.0.0")
received = 0


@plugin.hook("bench-protocol.tick")
async def tick(n: int) -> None:
    global received
    received += 1


app = plugin.create_app()
