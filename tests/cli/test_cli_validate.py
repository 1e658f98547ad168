"""`ops-center-plugin validate`: each finding names the file, the line and the fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ops_center_sdk.cli.main import main

MANIFEST = """\
id: demo-plugin
name: Demo Plugin
version: 1.0.0
category: monitoring
permissions:
  - devices:read
hooks:
  - event: device.created
    handler: on_device_created
    priority: 20
  - event: device.data.process
    handler: enrich
routes:
  - path: /devices/{device_id}
    methods: [GET, DELETE]
    handler: device_route
config_schema:
  type: object
  properties:
    threshold:
      type: number
      maximum: 10
      default: 3
"""

MAIN = """\
from ops_center_sdk import Plugin

plugin = Plugin(id="demo-plugin", name="Demo Plugin", version="1.0.0")


@plugin.hook("device.created", priority=20)
async def on_device_created(device_id, device_data):
    devices = await plugin.api.devices.list()
    await plugin.storage.set(device_id, len(devices))


@plugin.filter_hook("device.data.process")
async def enrich(data):
    return data


@plugin.route("/devices/{device_id}", methods=["DELETE", "GET"])
async def device_route(device_id: str):
    return {"device": await plugin.api.devices.get(device_id)}


app = plugin.create_app()
"""


def write(folder: Path, **files: str) -> Path:
    """A plugin folder: the valid demo plugin with ``files`` replaced (``""`` removes one)."""
    folder.mkdir(parents=True, exist_ok=True)
    defaults = {
        "plugin.yaml": MANIFEST,
        "main.py": MAIN,
        "README.md": "# Demo\n",
        "config.yaml": "threshold: 4\n",
    }
    for name, text in {**defaults, **files}.items():
        path = folder / name
        if text == "":
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def validate_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["validate", str(folder), "--json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, report


def only(report: dict[str, Any], severity: str = "error") -> dict[str, Any]:
    found = [f for f in report["findings"] if f["severity"] == severity]
    assert len(found) == 1, report["findings"]
    return found[0]


def test_a_valid_plugin_exits_0_with_no_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write(tmp_path / "demo")

    code, report = validate_json(folder, capsys)

    assert code == 0
    assert report == {
        "valid": True,
        "path": str(folder.resolve()),
        "plugin": {"id": "demo-plugin", "version": "1.0.0"},
        "errors": 0,
        "warnings": 0,
        "public_routes": [],
        "findings": [],
    }
    assert main(["validate", str(folder)]) == 0
    assert "demo-plugin 1.0.0 is valid (0 warnings)" in capsys.readouterr().out


def test_a_broken_manifest_reports_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = MANIFEST.replace("category: monitoring", "category: monitorin")
    folder = write(tmp_path / "demo", **{"plugin.yaml": broken})

    code, report = validate_json(folder, capsys)

    assert code == 1
    finding = only(report)
    assert (finding["file"], finding["line"], finding["code"]) == ("plugin.yaml", 4, "manifest")
    assert "monitorin" in finding["message"]
    assert finding["fix"] == "use 'monitoring' on line 4 of plugin.yaml"

    assert main(["validate", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "plugin.yaml:4: category: unknown category 'monitorin'" in out
    assert "fix: use 'monitoring'" in out


def test_invalid_yaml_reports_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "demo", **{"plugin.yaml": "id: demo-plugin\nname: [unclosed\n"})

    code, report = validate_json(folder, capsys)

    assert code == 1
    finding = report["findings"][0]
    assert finding["file"] == "plugin.yaml"
    assert finding["line"] == 3
    assert "invalid YAML" in finding["message"]


def test_missing_entrypoint_and_readme(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "demo", **{"main.py": "", "README.md": ""})

    code, report = validate_json(folder, capsys)

    assert code == 1
    messages = {f["message"]: f for f in report["findings"]}
    entry = messages["the entrypoint main.py does not exist"]
    assert entry["file"] == "plugin.yaml"
    assert "create main.py" in entry["fix"]
    assert messages["the plugin has no README"]["file"] == "README.md"


def test_a_handler_name_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = MANIFEST.replace("handler: on_device_created", "handler: on_device_create")
    folder = write(tmp_path / "demo", **{"plugin.yaml": manifest})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert (error["file"], error["line"], error["code"]) == ("plugin.yaml", 9, "hook-handler")
    assert "'on_device_create'" in error["message"]
    assert "did you mean 'on_device_created'?" in error["message"]
    assert "rename it to 'on_device_created'" in error["fix"]
    warning = only(report, "warning")
    assert warning["code"] == "undeclared-hook"
    assert (warning["file"], warning["line"]) == ("main.py", 6)


@pytest.mark.parametrize(
    ("old", "new", "code", "where", "text"),
    [
        (
            '@plugin.hook("device.created", priority=20)',
            '@plugin.hook("device.updated", priority=20)',
            "hook-event",
            ("plugin.yaml", 8),
            "registers it for 'device.updated'",
        ),
        (
            '@plugin.hook("device.created", priority=20)',
            '@plugin.hook("device.created")',
            "hook-priority",
            ("plugin.yaml", 10),
            "priority 20, the decorator on main.py:6 gives 10",
        ),
        (
            '@plugin.hook("device.created", priority=20)\n',
            "",
            "hook-decorator",
            ("main.py", 6),
            "not registered",
        ),
        (
            '@plugin.filter_hook("device.data.process")',
            '@plugin.hook("device.data.process")',
            "hook-decorator",
            ("main.py", 12),
            "is a filter",
        ),
        (
            'methods=["DELETE", "GET"]',
            'methods=["GET"]',
            "route-methods",
            ("plugin.yaml", 15),
            "with DELETE, GET, the decorator on main.py:17 with GET",
        ),
        (
            '@plugin.route("/devices/{device_id}"',
            '@plugin.route("/device/{device_id}"',
            "route-path",
            ("plugin.yaml", 14),
            "registers it at '/device/{device_id}'",
        ),
    ],
    ids=["event", "priority", "undecorated", "filter-vs-hook", "methods", "path"],
)
def test_the_decorator_must_agree_with_the_manifest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    code: str,
    where: tuple[str, int],
    text: str,
) -> None:
    assert old in MAIN
    folder = write(tmp_path / "demo", **{"main.py": MAIN.replace(old, new)})

    exit_code, report = validate_json(folder, capsys)

    assert exit_code == 1
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [e["code"] for e in errors] == [code], report["findings"]
    assert (errors[0]["file"], errors[0]["line"]) == where
    assert text in errors[0]["message"]
    assert errors[0]["fix"]


def test_an_unknown_event_in_the_code_suggests_the_catalog_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = MAIN.replace('@plugin.hook("device.created"', '@plugin.hook("device.craeted"')
    folder = write(tmp_path / "demo", **{"main.py": typo})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert (error["file"], error["line"], error["code"]) == ("main.py", 6, "unknown-event")
    assert "unknown event 'device.craeted'" in error["message"]
    assert "did you mean 'device.created'?" in error["message"]
    assert error["fix"] == 'use @plugin.hook("device.created") on line 6 of main.py'
    assert [f for f in report["findings"] if f["severity"] == "warning"] == []

    assert main(["validate", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "main.py:6: @plugin.hook('device.craeted') on on_device_created" in out
    assert "craeted" not in out.split("fix:", 1)[1]
    assert "plugin.yaml's hooks" not in out


def test_an_unknown_filter_and_a_name_far_from_the_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code_text = MAIN.replace(
        'filter_hook("device.data.process")', 'filter_hook("device.dta.proces")'
    )
    code_text = code_text.replace(
        "app = plugin.create_app()",
        '@plugin.hook("printer.jammed")\nasync def jammed():\n    pass\n\n\n'
        '@plugin.hook("demo-plugin.report.ready")\nasync def own():\n    pass\n\n\n'
        "app = plugin.create_app()",
    )
    folder = write(tmp_path / "demo", **{"main.py": code_text})

    code, report = validate_json(folder, capsys)

    assert code == 1
    unknown = {f["line"]: f for f in report["findings"] if f["code"] == "unknown-event"}
    assert sorted(unknown) == [12, 22]
    assert "unknown filter 'device.dta.proces'" in unknown[12]["message"]
    assert (
        unknown[12]["fix"] == 'use @plugin.filter_hook("device.data.process") on line 12 of main.py'
    )
    assert "did you mean" not in unknown[22]["message"]
    assert "device.created" in unknown[22]["fix"]
    assert "'demo-plugin.<name>'" in unknown[22]["fix"]
    # the plugin's own namespace is not unknown: only "not declared in plugin.yaml"
    warnings = [f for f in report["findings"] if f["severity"] == "warning"]
    assert [(w["code"], w["line"]) for w in warnings] == [("undeclared-hook", 27)]


def test_a_handler_only_in_the_code_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = MAIN.replace(
        "app = plugin.create_app()",
        '@plugin.route("/extra")\nasync def extra():\n    return {}\n\n\napp = plugin.create_app()',
    )
    folder = write(tmp_path / "demo", **{"main.py": extra})

    code, report = validate_json(folder, capsys)

    assert code == 0
    warning = only(report, "warning")
    assert warning["code"] == "undeclared-route"
    assert warning["line"] == 22
    assert "`- path: /extra`" in warning["fix"]


def test_validate_shows_the_public_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = MANIFEST.replace(
        "    handler: device_route\n",
        "    handler: device_route\n  - path: /status\n    handler: status\n    public: true\n",
    )
    main_py = MAIN.replace(
        "app = plugin.create_app()",
        '@plugin.route("/status", public=True)\nasync def status():\n    return {}\n\n\n'
        '@plugin.route("/open", methods=["POST"], public=True)\nasync def opened():\n'
        "    return {}\n\n\napp = plugin.create_app()",
    )
    folder = write(tmp_path / "demo", **{"plugin.yaml": manifest, "main.py": main_py})

    code, report = validate_json(folder, capsys)

    assert code == 0
    assert report["public_routes"] == ["GET /status", "POST /open"]
    assert only(report, "warning")["code"] == "undeclared-route"  # /open
    assert main(["validate", str(folder)]) == 0
    assert "public routes: GET /status, POST /open" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("yaml_public", "code_public"), [("true", "False"), ("false", "True"), ("true", "")]
)
def test_plugin_yaml_and_the_decorator_must_agree_on_public(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml_public: str, code_public: str
) -> None:
    manifest = MANIFEST.replace(
        "    handler: device_route\n", f"    handler: device_route\n    public: {yaml_public}\n"
    )
    argument = f", public={code_public}" if code_public else ""
    main_py = MAIN.replace('methods=["DELETE", "GET"])', f'methods=["DELETE", "GET"]{argument})')
    folder = write(tmp_path / "demo", **{"plugin.yaml": manifest, "main.py": main_py})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert error["code"] == "route-public"
    assert (error["file"], error["line"]) == ("plugin.yaml", 14)
    assert "needs an API key" in error["fix"]
    assert report["public_routes"] == []  # they disagree: the host asks for a key


def test_a_permission_missing_for_an_api_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_py = MAIN.replace(
        "    return data\n",
        "    await plugin.api.alerts.create({'title': 't', 'severity': 'info'})\n    return data\n",
    )
    folder = write(tmp_path / "demo", **{"main.py": main_py})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert (error["file"], error["line"], error["code"]) == ("main.py", 14, "permission")
    assert "plugin.api.alerts.create() needs the permission 'alerts:write'" in error["message"]
    assert error["fix"] == "add `- alerts:write` to permissions in plugin.yaml (line 5)"


def test_api_calls_through_aliases_and_helper_modules_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    helper = """\
    from main import plugin

    api = plugin.api
    users = plugin.api.users


    async def audit():
        await api.webhooks.list()
        async for user in users.iterate():
            print(user)
        await api.devices.push_metrics("d1", {"cpu": 1})
    """
    folder = write(tmp_path / "demo", **{"lib/audit.py": helper})

    code, report = validate_json(folder, capsys)

    assert code == 1
    found = {(f["file"], f["line"]): f["message"] for f in report["findings"]}
    assert "'webhooks:read'" in found[("lib/audit.py", 8)]
    assert (
        "plugin.api.users.iterate() needs the permission 'users:read'" in found[("lib/audit.py", 9)]
    )
    assert "'metrics:write'" in found[("lib/audit.py", 11)]


def test_a_call_the_api_does_not_have(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main_py = MAIN.replace("plugin.api.devices.get(", "plugin.api.devices.fetch(")
    folder = write(tmp_path / "demo", **{"main.py": main_py})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert error["code"] == "api-call"
    assert "plugin.api.devices.fetch() is not an API call" in error["message"]


def test_config_yaml_must_satisfy_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write(tmp_path / "demo", **{"config.yaml": "# settings\nthreshold: 12\n"})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert (error["file"], error["line"], error["code"]) == ("config.yaml", 2, "config")
    assert "threshold" in error["message"]
    assert "10" in error["message"]


def test_plugin_id_in_the_code_must_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_py = MAIN.replace('Plugin(id="demo-plugin"', 'Plugin(id="other-plugin"')
    folder = write(tmp_path / "demo", **{"main.py": main_py})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = only(report)
    assert (error["file"], error["line"]) == ("main.py", 3)
    assert "Plugin(id='other-plugin') does not match plugin.yaml's id" in error["message"]


def test_validate_never_runs_the_plugins_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran.txt"
    main_py = f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(3)\n" + MAIN
    folder = write(tmp_path / "demo", **{"main.py": main_py})

    code, report = validate_json(folder, capsys)

    assert code == 0, report
    assert not marker.exists()


def test_a_syntax_error_in_the_entrypoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write(tmp_path / "demo", **{"main.py": MAIN.replace("async def enrich", "async df")})

    code, report = validate_json(folder, capsys)

    assert code == 1
    error = report["findings"][0]
    assert (error["file"], error["line"], error["code"]) == ("main.py", 13, "syntax")


def test_a_folder_without_a_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = validate_json(tmp_path, capsys)

    assert code == 1
    assert any("ops-center-plugin init" in f["message"] for f in report["findings"])
