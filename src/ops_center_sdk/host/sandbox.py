"""Where a plugin process runs: a filesystem view, its own user, resource limits.

A plugin is somebody else's code. The host starts each plugin process in a
sandbox that shows it only what it needs:

- **bubblewrap** (Linux, ``bwrap`` on the PATH): a new mount namespace whose
  root holds only the Python runtime and its packages (read-only), the
  plugin's folder (read-only), the plugin's own data folder (read-write), a
  private ``/tmp``, and a few files of ``/etc`` (certificates, hosts, time
  zones). The host's store, its key files and other plugins' folders are not
  in that view at all. The process also gets its own PID and IPC namespaces,
  so it cannot see or signal the host's processes. The network is shared:
  the plugin reaches the host's REST API on 127.0.0.1.
- **a user of its own** when the host runs as root: every plugin process
  runs as a uid of its own (allocated per installation), so even a file
  that is in its view is readable only when its permissions say so.
- **resource limits** from the manifest's ``runtime.limits`` (address space,
  CPU seconds, open files; :class:`ResourceLimits` gives the defaults).

bubblewrap was chosen over hand-made namespaces or landlock because it is a
small, audited, packaged tool (Flatpak's sandbox) that works as root and,
with user namespaces, as an ordinary user; landlock needs kernel 5.13+ and
cannot hide a path that a parent folder grants. Where no sandbox can be set
up (macOS, no bubblewrap), :class:`NoSandbox` runs the process as before;
the host says so at start and in the plugin's health, and the other
protections (an environment with only the plugin's own key and secret, no
admin key on disk, no inherited file descriptors) still hold.

    sandbox = detect_sandbox()            # "auto": bubblewrap when it works here
    command = sandbox.command(argv, view)  # argv wrapped to run inside it
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger("ops_center_sdk.host.sandbox")

#: ``OPS_CENTER_SANDBOX``: ``auto`` (default), ``bubblewrap`` (refuse to start
#: plugin processes without it) or ``none``.
SANDBOX_ENV = "OPS_CENTER_SANDBOX"
#: The uids handed to plugin processes when the host runs as root.
FIRST_PLUGIN_UID = 61000
LAST_PLUGIN_UID = 64999

#: Files of /etc a Python process needs to resolve localhost, verify TLS and
#: know the time zone; nothing else of /etc is in the view.
_ETC_FILES = (
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/ld.so.cache",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
)
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")


class SandboxUnavailable(Exception):
    """``OPS_CENTER_SANDBOX=bubblewrap`` was asked for and cannot be set up here."""


@dataclass(frozen=True)
class ResourceLimits:
    """Per-process limits (``runtime.limits`` in plugin.yaml); ``None`` means unlimited.

    ``memory_mb`` is the address space (RLIMIT_AS): it counts reserved, not
    only used, memory, so it is set well above what a plugin uses (a Python
    server with a few threads reserves 300-600 MB). ``cpu_seconds``
    (RLIMIT_CPU) is total CPU time over the process's life: a server runs for
    weeks, so it is off unless the manifest sets it. ``open_files`` is
    RLIMIT_NOFILE.
    """

    memory_mb: int | None = 2048
    cpu_seconds: int | None = None
    open_files: int | None = 1024

    def describe(self) -> dict[str, int | None]:
        return {
            "memory_mb": self.memory_mb,
            "cpu_seconds": self.cpu_seconds,
            "open_files": self.open_files,
        }

    def apply(self) -> None:
        """Set the limits on the calling process (run in the child before exec)."""
        if self.memory_mb is not None:
            size = self.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if self.cpu_seconds is not None:
            # The soft limit sends SIGXCPU (uvicorn stops); the hard one SIGKILL.
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        if self.open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))


@dataclass(frozen=True)
class View:
    """What one plugin process may see and be.

    ``folder`` (read-only) and ``data_dir`` (read-write) are the plugin's
    own; ``hidden`` are host paths that must never be visible, even when they
    lie inside ``folder`` (``dev``'s data folder is ``.ops-center/data`` of
    the working folder, often the plugin folder itself). ``uid`` is the
    plugin's own user, or ``None`` to keep the host's.
    """

    folder: Path
    data_dir: Path
    hidden: tuple[Path, ...] = ()
    uid: int | None = None
    limits: ResourceLimits = field(default_factory=ResourceLimits)


class Sandbox:
    """How plugin processes are started: the base class runs them unconfined."""

    kind = "none"
    #: Why there is no sandbox (``None`` when there is one).
    reason: str | None = None

    def command(self, argv: Sequence[str], view: View) -> list[str]:
        """``argv`` as run inside the sandbox for ``view``."""
        return list(argv)

    def preexec(self, view: View) -> Callable[[], None]:
        """What the child runs before exec: the limits, and (without a view) the user."""

        def setup() -> None:
            view.limits.apply()
            if view.uid is not None:
                os.setgroups([])
                os.setgid(view.uid)
                os.setuid(view.uid)

        return setup

    @property
    def isolates_files(self) -> bool:
        return False

    @property
    def switches_user(self) -> bool:
        """Whether plugin processes run as users of their own (the host runs as root)."""
        return _is_root()

    def describe(self, view: View | None = None) -> dict[str, Any]:
        """What the plugin's health shows of its sandbox."""
        described: dict[str, Any] = {
            "kind": self.kind,
            "filesystem": "isolated" if self.isolates_files else "shared",
            "user": view.uid if view is not None else None,
        }
        if view is not None:
            described["limits"] = view.limits.describe()
        if self.reason:
            described["warning"] = self.reason
        return described


class NoSandbox(Sandbox):
    """No filesystem view: the plugin process sees what the host's user sees.

    Run as root, it still runs each plugin as a user of its own, when that
    user can run this Python at all (every folder down to it open to others).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._runtime_open = all(_open_to_others(p) for p in _python_paths())
        if _is_root() and not self._runtime_open:
            self.reason += (
                "; plugins run as root too: the Python runtime "
                f"({sys.executable}) is not readable by other users"
            )

    @property
    def switches_user(self) -> bool:
        return _is_root() and self._runtime_open


class Bubblewrap(Sandbox):
    """A ``bwrap`` filesystem view with only the runtime and the plugin's own folders."""

    kind = "bubblewrap"

    def __init__(self, bwrap: str, setpriv: str | None, runtime_paths: Sequence[Path]) -> None:
        self.bwrap = bwrap
        self.setpriv = setpriv
        self.runtime_paths = tuple(runtime_paths)

    @property
    def isolates_files(self) -> bool:
        return True

    def preexec(self, view: View) -> Callable[[], None]:
        # The user changes inside the view (setpriv), after bwrap has mounted it.
        return view.limits.apply

    def command(self, argv: Sequence[str], view: View) -> list[str]:
        mounts = _Mounts()
        mounts.add("--tmpfs", Path("/tmp"))
        for system in _SYSTEM_DIRS:
            path = Path(system)
            if path.is_symlink():
                mounts.symlink(os.readlink(path), path)
            elif path.is_dir():
                mounts.add("--ro-bind", path)
        for path in self.runtime_paths:
            mounts.add("--ro-bind", path)
        for name in _ETC_FILES:
            mounts.add("--ro-bind-try", Path(name))
        mounts.add("--ro-bind", view.folder)
        for hidden in view.hidden:
            if _inside(hidden, view.folder) or any(_inside(hidden, p) for p in self.runtime_paths):
                mounts.add("--tmpfs", hidden)
        mounts.add("--bind", view.data_dir)
        command = [
            self.bwrap,
            "--die-with-parent",
            "--as-pid-1",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            *mounts.arguments,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--chdir",
            str(view.folder),
        ]
        if view.uid is not None:
            assert self.setpriv is not None
            command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
            command += [
                self.setpriv,
                f"--reuid={view.uid}",
                f"--regid={view.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--",
            ]
        else:
            command.append("--")
        return command + list(argv)


class _Mounts:
    """bwrap mount arguments, with every parent folder made first (mode 0755).

    bwrap makes the parents of a mount point itself, but readable by root
    only; a plugin running as its own user could then not walk down to its
    folder.
    """

    def __init__(self) -> None:
        self.arguments: list[str] = []
        self._made: set[Path] = {Path("/")}

    def add(self, option: str, path: Path) -> None:
        if option == "--ro-bind-try" and not path.exists():
            return
        self._parents(path)
        if "bind" in option:
            self.arguments += [option, str(path), str(path)]
        else:  # a tmpfs: folders below it are made like those of the root
            self.arguments += [option, str(path)]
            self._made = {made for made in self._made if not _inside(made, path)}
        self._made.add(path)

    def symlink(self, target: str, path: Path) -> None:
        self._parents(path)
        self.arguments += ["--symlink", target, str(path)]
        self._made.add(path)

    def _parents(self, path: Path) -> None:
        for parent in reversed(path.parents):
            if parent in self._made or self._in_bind(parent):
                continue
            self.arguments += ["--perms", "0755", "--dir", str(parent)]
            self._made.add(parent)

    def _in_bind(self, path: Path) -> bool:
        """Whether ``path`` is a real folder of a bind (below the last tmpfs over it)."""
        for position in range(len(self.arguments) - 1, -1, -1):
            option = self.arguments[position]
            if option == "--tmpfs" and _inside(path, Path(self.arguments[position + 1])):
                return False
            if (
                "bind" in option
                and option.startswith("--")
                and _inside(path, Path(self.arguments[position + 1]))
            ):
                return True
        return False


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _python_paths() -> list[Path]:
    return [Path(sys.executable), Path(os.path.realpath(sys.executable)), Path(sys.prefix)]


def _open_to_others(path: Path) -> bool:
    """Whether a user other than the owner may walk down to ``path`` and use it."""
    try:
        for part in (*reversed(path.parents), path):
            mode = part.stat().st_mode
            if not mode & 0o001:
                return False
    except OSError:
        return False
    return True


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def detect_sandbox(setting: str | None = None) -> Sandbox:
    """The sandbox this machine can give plugin processes.

    ``setting`` (default ``$OPS_CENTER_SANDBOX``, else ``auto``): ``auto``
    uses bubblewrap when a trial run works and otherwise says why not;
    ``bubblewrap`` raises :class:`SandboxUnavailable` instead; ``none`` turns
    the sandbox off (the plugin's health says so).
    """
    choice = (setting or os.environ.get(SANDBOX_ENV) or "auto").strip().lower()
    if choice == "none":
        return NoSandbox(f"the sandbox is turned off ({SANDBOX_ENV}=none)")
    if choice not in ("auto", "bubblewrap"):
        raise SandboxUnavailable(
            f"{SANDBOX_ENV}={choice!r} is not a sandbox; use auto, bubblewrap or none"
        )
    problem = _bubblewrap_problem()
    if problem is None:
        bwrap = shutil.which("bwrap")
        assert bwrap is not None
        return Bubblewrap(bwrap, shutil.which("setpriv"), runtime_paths())
    if choice == "bubblewrap":
        raise SandboxUnavailable(problem)
    return NoSandbox(problem + "; plugin processes can read what the host's user can read")


@cache
def _bubblewrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox plugins here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return f"no sandbox on {sys.platform} (bubblewrap needs Linux)"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed, needed to run plugins as their own user"
    trial = [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--die-with-parent", "true"]
    try:
        result = subprocess.run(trial, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not run here: {exc}"
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip() or f"status {result.returncode}"
        return f"bubblewrap does not run here: {detail}"
    return None


@cache
def runtime_paths() -> tuple[Path, ...]:
    """The folders a plugin process needs to run this Python with the SDK.

    Asked of the interpreter itself (``python -I``: no current folder, no
    user site), so the host's working folder is never among them.
    """
    probe = (
        "import json, sys; "
        "print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix] + sys.path))"
    )
    output = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, check=True, timeout=30
    ).stdout
    found: list[Path] = [Path(sys.executable).parent, Path(os.path.realpath(sys.executable)).parent]
    for entry in json.loads(output):
        if entry:
            found.append(Path(entry))
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            found.append(Path(entry).absolute())
    kept: list[Path] = []
    for path in sorted({Path(os.path.realpath(p)) for p in found} | set(found), key=len_parts):
        if not path.exists() or any(_inside(path, k) for k in kept):
            continue
        if any(_inside(path, Path(s)) for s in _SYSTEM_DIRS):
            continue
        kept.append(path)
    return tuple(kept)


def len_parts(path: Path) -> int:
    return len(path.parts)
