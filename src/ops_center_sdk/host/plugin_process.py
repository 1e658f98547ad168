"""One run of a plugin's server process: started on a loopback socket, stopped by its PID.

The host opens the listening socket itself (127.0.0.1, a free port) and hands
it to the child (``python -m ops_center_sdk.plugin_server --fd N``), so the
plugin's URL is known at once and no other program can take the port. The
child runs in the host's :class:`~ops_center_sdk.host.sandbox.Sandbox` (a
filesystem view and a user of its own where the machine allows) and gets no
other file descriptor of the host than that socket and the read end of a
*lifeline* pipe: when the host is gone, even killed, the pipe reads EOF and
the plugin stops itself. The
child's output is read line by line: the plugin's own log records (JSON, see
``OPS_CENTER_LOG_FORMAT``) go to its logger ``ops_center.plugins.<id>`` in the
host, where the host keeps them for ``GET /api/v1/plugins/{id}/logs``; other
lines go to ``ops_center_sdk.host.process``. The last lines are kept to explain
a process that fails to start.

    process = PluginProcess("my-plugin", folder, env, secret=secret, sandbox=sandbox, view=view)
    await process.start()
    await process.wait_ready(client, within=30)    # GET /_ops/health answers
    await process.request(client, "POST", "/_ops/lifecycle/enable", b"{}", seconds=10)
    await process.stop()                            # SIGTERM, then SIGKILL

Every request to the ``/_ops/`` endpoints goes through :meth:`PluginProcess.request`,
which signs it (method, path, a new delivery id, body) with the plugin's secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ..logger import PLUGIN_LOGGER_PREFIX
from ..plugin_server import FAILURE_PREFIX
from ..protocol import SECRET_ENV
from ..signing import signed_headers
from .sandbox import Sandbox, View

log = logging.getLogger("ops_center_sdk.host.process")

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_LOCATION = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+): ")


class ProcessStartError(Exception):
    """The process exited or did not answer before it was ready.

    ``code`` is ``plugin_import_error`` or ``invalid_config`` when the plugin
    reported why it could not be served (with ``file``/``line`` when the
    message names them), else ``plugin_start_failed``.
    """

    def __init__(
        self, message: str, *, code: str = "plugin_start_failed", output: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.output = output

    @property
    def location(self) -> tuple[str | None, int | None]:
        """The ``file:line`` the message starts with, if any."""
        found = _LOCATION.match(self.message)
        if found is None:
            return None, None
        return found["file"], int(found["line"])


class PluginProcess:
    """A plugin's server process, from start to exit."""

    def __init__(
        self,
        plugin_id: str,
        folder: Path,
        env: Mapping[str, str],
        *,
        secret: str | None = None,
        sandbox: Sandbox | None = None,
        view: View | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.folder = folder
        self.env = dict(env)
        #: Signs every request to the process (by default the one in its environment).
        self.secret = secret if secret is not None else self.env.get(SECRET_ENV, "")
        self.sandbox = sandbox or Sandbox()
        self.view = view or View(folder=folder, data_dir=folder)
        self.port = 0
        #: The plugin's own pid when a sandbox stands between it and the host.
        self.plugin_pid: int | None = None
        self._lifeline: int | None = None
        self.stopping = False
        self.failure: dict[str, Any] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=40)
        self._plugin_log = logging.getLogger(f"{PLUGIN_LOGGER_PREFIX}.{plugin_id}")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The plugin's own pid (inside a sandbox: not the sandbox's)."""
        if self.plugin_pid is not None:
            return self.plugin_pid
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (negative: killed by that signal)."""
        code = self._process.returncode if self._process is not None else None
        if code is not None and self.plugin_pid is not None and code > 128:
            # bubblewrap exits with 128 + the signal that killed the plugin.
            return -(code - 128)
        return code

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def output(self) -> str:
        """The last lines the process wrote."""
        return "\n".join(self._tail)

    async def start(self) -> None:
        """Open the socket and start the process (it is not ready yet: see :meth:`wait_ready`)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lifeline_read, self._lifeline = os.pipe()
        info_read, info_write = os.pipe() if self.sandbox.kind == "bubblewrap" else (-1, -1)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            argv = [
                sys.executable,
                "-m",
                "ops_center_sdk.plugin_server",
                str(self.folder),
                "--fd",
                str(listener.fileno()),
                "--lifeline-fd",
                str(lifeline_read),
            ]
            inherited = [listener.fileno(), lifeline_read]
            command = self.sandbox.command(argv, self.view)
            if info_write >= 0:
                command[1:1] = ["--info-fd", str(info_write)]
                inherited.append(info_write)
            self._process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.folder,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=tuple(inherited),
                preexec_fn=self.sandbox.preexec(self.view),
                # Ctrl+C in the host's terminal must not reach the plugin: the
                # host disables it first, then stops it.
                start_new_session=True,
            )
        finally:
            # The child holds its own copies; keeping the socket would queue
            # connections to a dead process forever instead of refusing them.
            listener.close()
            os.close(lifeline_read)
            if info_write >= 0:
                os.close(info_write)
        if info_read >= 0:
            self.plugin_pid = await _sandboxed_pid(info_read)
        self._reader = asyncio.create_task(
            self._read_output(), name=f"ops-center-plugin-output:{self.plugin_id}"
        )

    async def request(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        seconds: float,
    ) -> httpx.Response:
        """One request to the process, signed: ``path`` is an ``/_ops/`` path."""
        url = httpx.URL(self.url + path)
        headers = signed_headers(
            body, self.secret, method=method, path=url.raw_path.decode("ascii")
        )
        if body:
            headers["content-type"] = "application/json"
        return await client.request(method, url, content=body, headers=headers, timeout=seconds)

    async def wait(self) -> int:
        """Wait until the process exits; its exit status."""
        assert self._process is not None
        code = await self._process.wait()
        if self._reader is not None:
            # The rest of its output (the failure line, a traceback) arrives with EOF.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1.0)
        return code

    async def exited_within(self, seconds: float) -> bool:
        """Whether the process has exited, waiting up to ``seconds`` for it."""
        process = self._process
        if process is None or process.returncode is not None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), seconds)
        return process.returncode is not None

    async def wait_ready(self, client: httpx.AsyncClient, *, within: float) -> dict[str, Any]:
        """Poll ``GET /_ops/health`` until it answers; the health document.

        Raises :class:`ProcessStartError` when the process exits first (with
        the reason the plugin reported, if any) or ``within`` seconds pass.
        """
        deadline = time.monotonic() + within
        exited = asyncio.ensure_future(self.wait())
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessStartError(
                        f"plugin {self.plugin_id!r} did not answer GET /_ops/health within "
                        f"{within:g} s",
                        output=self.output,
                    )
                probe = asyncio.ensure_future(
                    self.request(client, "GET", "/_ops/health", seconds=min(remaining, 2.0))
                )
                done, _ = await asyncio.wait({probe, exited}, return_when=asyncio.FIRST_COMPLETED)
                if exited in done:
                    probe.cancel()
                    with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                        await probe
                    raise self._start_failure()
                try:
                    response = probe.result()
                except httpx.HTTPError:
                    await asyncio.sleep(0.02)
                    continue
                if response.status_code == 200:
                    document: dict[str, Any] = response.json()
                    return document
                raise ProcessStartError(
                    f"plugin {self.plugin_id!r}: GET /_ops/health answered "
                    f"{response.status_code}: {response.text[:300]}",
                    output=self.output,
                )
        finally:
            if not exited.done():
                exited.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await exited

    def _start_failure(self) -> ProcessStartError:
        if self.failure is not None:
            return ProcessStartError(
                str(self.failure.get("message", "")),
                code=str(self.failure.get("code", "plugin_import_error")),
                output=self.output,
            )
        last = self.output.strip().splitlines()[-1:] or ["(no output)"]
        return ProcessStartError(
            f"plugin {self.plugin_id!r}: the process exited with status {self.returncode} "
            f"before it was ready; its last output: {last[0]}",
            output=self.output,
        )

    async def stop(self, *, grace: float = 5.0) -> None:
        """SIGTERM (uvicorn's graceful stop), then SIGKILL after ``grace`` s; waits for the exit."""
        self.stopping = True
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                # Inside bubblewrap the plugin is bwrap's child: signalling
                # bwrap would kill it at once, without uvicorn's graceful stop.
                if self.plugin_pid is not None:
                    os.kill(self.plugin_pid, signal.SIGTERM)
                else:
                    process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                log.warning(
                    "plugin %r (pid %s) did not stop within %g s; killing it",
                    self.plugin_id,
                    process.pid,
                    grace,
                )
                self.kill()
                await process.wait()
        self._cut_lifeline()
        await self._finish_reading()

    def _cut_lifeline(self) -> None:
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def kill(self) -> None:
        """SIGKILL the process now (a hung plugin)."""
        process = self._process
        if process is not None and process.returncode is None:
            if self.plugin_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.plugin_pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    async def _finish_reading(self) -> None:
        reader = self._reader
        if reader is None:
            return
        try:
            await asyncio.wait_for(reader, 2.0)
        except (TimeoutError, asyncio.CancelledError):
            reader.cancel()

    async def _read_output(self) -> None:
        assert self._process is not None
        stream = self._process.stdout
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the stream's limit
                raw = await stream.read(64 * 1024)
            if not raw:
                return
            self._line(raw.decode("utf-8", "replace").rstrip())

    def _line(self, line: str) -> None:
        if not line:
            return
        self._tail.append(line)
        if line.startswith(FAILURE_PREFIX):
            with contextlib.suppress(ValueError):
                self.failure = json.loads(line[len(FAILURE_PREFIX) :])
            return
        record = _json_record(line)
        if record is None:
            log.warning("plugin %s (pid %s): %s", self.plugin_id, self.pid, line)
            return
        level = _LEVELS.get(str(record.get("level", "INFO")).upper(), logging.INFO)
        name = str(record.get("logger", ""))
        message = str(record.get("message", ""))
        if record.get("exception"):
            message = f"{message}\n{record['exception']}"
        if name == self._plugin_log.name or name.startswith(self._plugin_log.name + "."):
            self._plugin_log.handle(_log_record(self._plugin_log.name, level, message, record))
        else:
            log.log(level, "plugin %s: [%s] %s", self.plugin_id, name or "-", message)


async def _sandboxed_pid(info: int) -> int | None:
    """The plugin's pid as bubblewrap reports it on its ``--info-fd`` (closed after)."""

    def read() -> bytes:
        chunks = []
        while chunk := os.read(info, 4096):
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        raw = await asyncio.wait_for(asyncio.to_thread(read), 10.0)
    except TimeoutError:
        return None
    finally:
        os.close(info)
    with contextlib.suppress(ValueError, AttributeError):
        pid = json.loads(raw.decode("utf-8", "replace")).get("child-pid")
        return int(pid) if pid else None
    return None


def _json_record(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "message" in record else None


def _log_record(
    name: str, level: int, message: str, fields: Mapping[str, Any]
) -> logging.LogRecord:
    """A record as the plugin logged it, stamped with the plugin's own time and context."""
    record = logging.LogRecord(name, level, "(plugin process)", 0, message, None, None)
    stamp = fields.get("timestamp")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            record.created = datetime.fromisoformat(stamp).timestamp()
    for field in ("plugin_id", "event", "task"):
        setattr(record, field, fields.get(field))
    return record
