"""`ops-center-plugin init`: a working plugin of each type, questions only on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ops_center_sdk.cli.main import main
from ops_center_sdk.manifest import load_manifest
from ops_center_sdk.packaging import build_package
from ops_center_sdk.validation import validate_plugin

COMMON_FILES = {
    ".gitignore",
    "README.md",
    "config.yaml",
    "main.py",
    "plugin.yaml",
    "pytest.ini",
    "requirements.txt",
    "tests/test_plugin.py",
}
TYPE_FILES = {
    "backend": set(),
    "frontend": {"ui/index.html", "ui/app.js"},
    "hybrid": {"ui/index.html", "ui/app.js"},
    "container": {"Dockerfile", ".dockerignore"},
}


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("plugin_type", sorted(TYPE_FILES))
def test_each_type_validates_and_builds_fresh_from_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plugin_type: str
) -> None:
    folder = tmp_path / f"my-{plugin_type}"
    code = main(
        [
            "init",
            str(folder),
            "--name",
            'My "Quoted": Plugin',
            "--description",
            "Watches # things: closely",
            "--author",
            "Ann O'Neil",
            "--category",
            "security",
            "--type",
            plugin_type,
            "--version",
            "0.3.0",
        ]
    )

    assert code == 0
    assert files_in(folder) == COMMON_FILES | TYPE_FILES[plugin_type]
    manifest = load_manifest(folder)
    assert manifest.id == f"my-{plugin_type}"
    assert manifest.name == 'My "Quoted": Plugin'
    assert manifest.description == "Watches # things: closely"
    assert manifest.author == "Ann O'Neil"
    assert (manifest.category, manifest.type, manifest.version) == (
        "security",
        plugin_type,
        "0.3.0",
    )
    report = validate_plugin(folder)
    assert report.findings == (), [str(f) for f in report.findings]
    built = build_package(folder)
    assert built.path.name == f"my-{plugin_type}-0.3.0.tar.gz"
    out = capsys.readouterr().out
    assert "pip install -r requirements.txt" in out


def test_requirements_name_the_sdk_with_its_test_extra(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "my-plugin")]) == 0

    lines = (tmp_path / "my-plugin" / "requirements.txt").read_text().splitlines()
    [requirement] = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert requirement.name == "ops-center-plugin-sdk"
    assert requirement.extras == {"test"}
    assert requirement.specifier.contains("0.1.0")


def test_defaults_without_a_terminal(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "disk-watch")]) == 0

    manifest = load_manifest(tmp_path / "disk-watch")
    assert (manifest.name, manifest.version) == ("Disk Watch", "1.0.0")
    assert (manifest.category, manifest.type) == ("monitoring", "backend")


def test_an_existing_folder_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "my-plugin"
    folder.mkdir()
    (folder / "main.py").write_text("# mine\n")

    assert main(["init", str(folder)]) == 1

    assert "already exists" in capsys.readouterr().err
    assert files_in(folder) == {"main.py"}
    assert (folder / "main.py").read_text() == "# mine\n"


def test_an_empty_folder_is_filled(tmp_path: Path) -> None:
    folder = tmp_path / "my-plugin"
    folder.mkdir()

    assert main(["init", str(folder)]) == 0
    assert files_in(folder) == COMMON_FILES


def test_bad_values_are_usage_errors_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "My_Plugin")]) == 2
    assert "did you mean 'my-plugin'?" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "ok-name"), "--version", "v1"]) == 2
    assert "--version" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["init", str(tmp_path / "ok-name"), "--type", "desktop"])
    assert exited.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_questions_on_a_terminal(tmp_path: Path) -> None:
    """Run init under a pseudo-terminal and answer its questions like a person."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ops_center_sdk", "init", "asked-plugin", "--author", "Flag"],
        cwd=tmp_path,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(secondary)
    answers = {
        "Name [Asked Plugin]: ": "Asked Plugin Pro",
        "Description: ": "Answered at a prompt",
        "Category (": "analytics",
        "Type (": "nonsense",
        "choose one of": "hybrid",
        "Version [1.0.0]: ": "",
    }
    screen = ""
    try:
        while process.poll() is None or select.select([primary], [], [], 0)[0]:
            ready, _, _ = select.select([primary], [], [], 10)
            assert ready, f"init stopped answering; screen so far:\n{screen}"
            try:
                chunk = os.read(primary, 4096).decode()
            except OSError:
                break
            screen += chunk
            for prompt in list(answers):
                if prompt in screen.split("\n")[-1] or (
                    prompt == "choose one of" and prompt in chunk
                ):
                    os.write(primary, (answers.pop(prompt) + "\n").encode())
    finally:
        os.close(primary)
        process.wait(timeout=10)

    assert process.returncode == 0, screen
    assert "Author" not in screen  # given as a flag, so not asked
    manifest = load_manifest(tmp_path / "asked-plugin")
    assert manifest.name == "Asked Plugin Pro"
    assert manifest.description == "Answered at a prompt"
    assert manifest.author == "Flag"
    assert (manifest.category, manifest.type, manifest.version) == ("analytics", "hybrid", "1.0.0")


async def test_the_backend_hook_reads_cpu_usage_as_the_walkthrough_sends_it(
    tmp_path: Path,
) -> None:
    from ops_center_sdk.testing import load_test_plugin, trigger_hook

    assert main(["init", str(tmp_path / "cpu-watch"), "--type", "backend"]) == 0
    plugin = load_test_plugin(tmp_path / "cpu-watch")
    await trigger_hook(plugin, "device.created", device_id="web-1", device_data={"name": "web-1"})

    await trigger_hook(plugin, "device.metrics_updated", device_id="web-1", metrics={"cpu": 99})
    assert plugin.api.get_requests(method="POST", endpoint="/alerts") == []
    await trigger_hook(
        plugin, "device.metrics_updated", device_id="web-1", metrics={"cpu_usage": 99}
    )
    [request] = plugin.api.get_requests(method="POST", endpoint="/alerts")
    assert request["json"]["title"] == "High CPU usage"
    assert "99" in request["json"]["message"]


async def test_the_hybrid_delete_hook_takes_device_data(tmp_path: Path) -> None:
    import inspect

    from ops_center_sdk.testing import load_test_plugin, trigger_hook

    assert main(["init", str(tmp_path / "web-view"), "--type", "hybrid"]) == 0
    plugin = load_test_plugin(tmp_path / "web-view")
    [handler] = plugin.hooks.actions("device.deleted")
    assert list(inspect.signature(handler.function).parameters) == ["device_id", "device_data"]

    await trigger_hook(plugin, "device.created", device_id="d-1", device_data={"name": "Web 1"})
    await trigger_hook(plugin, "device.deleted", device_id="d-1", device_data={"name": "Web 1"})
    assert await plugin.storage.list_keys("device:*") == []
