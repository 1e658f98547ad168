"""The plugin manifest (``plugin.yaml``): what a plugin is, what it may do, what it handles.

>>> manifest = parse_manifest("id: my-plugin\\nname: My Plugin\\nversion: 1.0.0\\n")
>>> manifest.metadata.version
'1.0.0'

Loading checks every rule at once and raises one
:class:`~ops_center_sdk.errors.ManifestError` listing each problem with its
field path (``hooks[1].event``), what is wrong, what is allowed, and the line
of ``plugin.yaml`` it is on.
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from .config import config_schema_problems
from .errors import ManifestError, Problem, UnknownEventError
from .events import FILTER_CATALOG, check_name
from .permissions import ALL_PERMISSIONS
from .yaml_source import (
    EMPTY_LINE_MAP,
    KeyPath,
    LineMap,
    describe_value,
    duplicate_key_problems,
    format_path,
    load_yaml_with_lines,
    non_json_values,
    syntax_problem,
)

MANIFEST_FILE = "plugin.yaml"

PluginType = Literal["backend", "frontend", "hybrid", "container"]
Category = Literal["monitoring", "ai", "security", "integration", "analytics"]
PricingModel = Literal["free", "one-time", "subscription"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

PLUGIN_TYPES: tuple[str, ...] = get_args(PluginType)
CATEGORIES: tuple[str, ...] = get_args(Category)
PRICING_MODELS: tuple[str, ...] = get_args(PricingModel)
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)

Loc = KeyPath
Violation = tuple[Loc, str]

_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# From semver.org (SemVer 2.0.0), the official regular expression.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_PYTHON_VERSION = re.compile(r"^(?:>=\s*)?(\d+)\.(\d+)\+?$")
_ROUTE_PARAM = re.compile(r"\{([^{}]*)\}")
_ROUTE_CONVERTERS = ("str", "path", "int", "float", "uuid")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RULE_ERROR = "manifest_rule"
# _validate checks cross-field rules itself, on the raw data, to give each its own path.
_RULES_CHECKED_BY_CALLER = "ops_center_sdk.rules_checked_by_caller"

M = TypeVar("M", bound="_MetadataFields")


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("manifest_value", "{message}", {"message": message})


def _did_you_mean(value: Any, choices: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str):
        return "."
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else "."


# ==================== field checks ====================


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and value in allowed:
            return value
        if isinstance(value, str):
            shown = f"unknown {what} {value!r}{_did_you_mean(value, allowed)}"
        else:
            shown = f"{what} must be a string, got {describe_value(value)}."
        raise _invalid(f"{shown} Allowed: {', '.join(allowed)}.")

    return check


def _check_id(value: Any) -> Any:
    if not isinstance(value, str):
        raise _invalid(f"must be a string such as 'my-plugin', got {describe_value(value)}")
    if _SLUG.match(value) and 3 <= len(value) <= 64:
        return value
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    slug = re.sub(r"^[0-9-]+", "", slug)[:64].rstrip("-")
    hint = f"; did you mean {slug!r}?" if slug != value and len(slug) >= 3 else "."
    if not 3 <= len(value) <= 64:
        raise _invalid(f"must be 3 to 64 characters long, got {len(value)} ({value!r}){hint}")
    raise _invalid(
        f"{value!r} is not a plugin id: use lowercase letters, digits and single hyphens, "
        f"starting with a letter (like 'my-plugin'){hint}"
    )


def _check_version(value: Any) -> Any:
    if isinstance(value, str) and _SEMVER.match(value):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(f"must be a SemVer version such as '1.0.0', got {describe_value(value)}")
    text = str(value)
    guess = text[1:] if text[:1] in "vV" else text
    suggestion = None
    if re.fullmatch(r"\d+(\.\d+){0,2}", guess):
        parts = [str(int(part)) for part in guess.split(".")]
        suggestion = ".".join(parts + ["0"] * (3 - len(parts)))
    elif _SEMVER.match(guess):
        suggestion = guess
    as_number = "" if isinstance(value, str) else " (YAML read it as a number)"
    hint = f"; did you mean {suggestion!r}?" if suggestion else "."
    raise _invalid(
        f"{text!r}{as_number} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH, like '1.0.0'){hint}"
    )


def _text(max_length: int, *, blank: bool = True) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise _invalid(f"must be a string, got {describe_value(value)}")
        if not blank and not value.strip():
            raise _invalid("must not be empty")
        if len(value) > max_length:
            raise _invalid(f"must be at most {max_length} characters long, got {len(value)}")
        return value

    return check


def _check_url(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, str):
        raise _invalid(f"must be a URL string, got {describe_value(value)}")
    if not re.match(r"^https?://[^\s/?#]+[^\s]*$", value):
        raise _invalid(f"{value!r} is not an http(s) URL (like 'https://github.com/org/repo')")
    return value


def _check_handler(value: Any) -> Any:
    if not isinstance(value, str):
        raise _invalid(f"must be a function name, got {describe_value(value)}")
    if not value.isidentifier() or keyword.iskeyword(value):
        raise _invalid(
            f"{value!r} is not a Python function name (letters, digits and _, "
            "not starting with a digit, not a keyword)"
        )
    return value


def _check_permission(value: Any) -> Any:
    if isinstance(value, str) and value in ALL_PERMISSIONS:
        return value
    if not isinstance(value, str):
        raise _invalid(f"must be a string such as 'devices:read', got {describe_value(value)}")
    raise _invalid(
        f"unknown permission {value!r}{_did_you_mean(value, ALL_PERMISSIONS)} "
        f"Allowed: {', '.join(ALL_PERMISSIONS)}."
    )


def _check_method(value: Any) -> Any:
    if isinstance(value, str) and value.upper() in HTTP_METHODS:
        return value.upper()
    return _one_of(HTTP_METHODS, "HTTP method")(value)


def _check_route_path(value: Any) -> Any:
    if not isinstance(value, str):
        raise _invalid(f"must be a path string such as '/status', got {describe_value(value)}")
    if not value.startswith("/"):
        raise _invalid(f"must start with '/', got {value!r}; did you mean {'/' + value!r}?")
    if re.search(r"[\s?#]", value) or "//" in value:
        raise _invalid(
            f"{value!r} is not a route path: no spaces, '?', '#' or '//' (query parameters "
            "are declared on the handler, not in the path)"
        )
    names: list[str] = []
    for param in _ROUTE_PARAM.findall(value):
        name, _, converter = param.partition(":")
        if not name.isidentifier() or (converter and converter not in _ROUTE_CONVERTERS):
            raise _invalid(
                f"{{{param}}} in {value!r} is not a path parameter: write {{name}} with a "
                f"Python name, optionally {{name:type}} with type one of "
                f"{', '.join(_ROUTE_CONVERTERS)}"
            )
        if name in names:
            raise _invalid(f"path parameter {{{name}}} appears twice in {value!r}")
        names.append(name)
    if "{" in _ROUTE_PARAM.sub("", value) or "}" in _ROUTE_PARAM.sub("", value):
        raise _invalid(f"unbalanced braces in {value!r}; path parameters look like {{device_id}}")
    return value


def _check_keyword(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip() or len(value) > 50:
        raise _invalid(
            f"must be a word or short phrase (1-50 characters), got {describe_value(value)}"
        )
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check_unless_none(value: Any) -> Any:
        return None if value is None else check(value)

    return check_unless_none


def _null_is_empty(value: Any) -> Any:
    return () if value is None else value


def _single_is_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Permission = Annotated[str, BeforeValidator(_check_permission)]
Keyword = Annotated[str, BeforeValidator(_check_keyword)]
Method = Annotated[HttpMethod, BeforeValidator(_check_method)]


# ==================== models ====================


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pricing(_Strict):
    """How the plugin is sold: ``free`` (price 0), ``one-time`` or ``subscription`` (price > 0)."""

    model: PricingModel = "free"
    price: float = Field(default=0, ge=0, strict=True, allow_inf_nan=False)
    currency: str = "USD"

    _model = field_validator("model", mode="before")(_one_of(PRICING_MODELS, "pricing model"))

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if isinstance(value, str) and _CURRENCY.match(value):
            return value
        raise _invalid(
            f"must be a three-letter ISO 4217 code in capitals, like 'USD' or 'EUR', "
            f"got {describe_value(value)}"
        )

    @model_validator(mode="after")
    def _price_matches_model(self) -> Pricing:
        problem = _pricing_problem(self.model, self.price)
        if problem:
            raise PydanticCustomError(_RULE_ERROR, "{message}", {"message": problem})
        return self


class HookEntry(_Strict):
    """A hook the plugin declares: the ``event`` and the ``handler`` function that handles it."""

    event: str
    handler: str
    priority: int | None = Field(default=None, strict=True)

    _handler = field_validator("handler", mode="before")(_check_handler)
    _event = field_validator("event", mode="before")(_text(200, blank=False))


class RouteEntry(_Strict):
    """A route the plugin serves at ``/plugins/{id}{path}``."""

    path: str
    methods: tuple[Method, ...] = ("GET",)
    handler: str
    #: Served through the host without an API key.
    public: bool = Field(default=False, strict=True)

    _path = field_validator("path", mode="before")(_check_route_path)
    _handler = field_validator("handler", mode="before")(_check_handler)

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, value: Any) -> Any:
        value = _single_is_list(value)
        if isinstance(value, list | tuple) and not value:
            raise _invalid(f"must list at least one HTTP method ({', '.join(HTTP_METHODS)})")
        return value


class RuntimeLimits(_Strict):
    """Limits of the plugin's process when a host runs it as its own process.

    ``memory_mb``: address space in MiB (default 2048); ``cpu_seconds``: CPU
    time over the process's life (default: none); ``open_files``: open file
    descriptors (default 1024).
    """

    memory_mb: int | None = Field(default=None, ge=256, le=1024 * 1024, strict=True)
    cpu_seconds: int | None = Field(default=None, ge=1, strict=True)
    open_files: int | None = Field(default=None, ge=64, le=1024 * 1024, strict=True)


class Runtime(_Strict):
    """How the plugin runs: Python ``version`` (``"3.11+"``) and the ``entrypoint`` module file.

    ``limits`` bounds the plugin's own process (:class:`RuntimeLimits`).
    """

    type: Literal["python"] = "python"
    version: str = "3.11+"
    entrypoint: str = "main.py"
    limits: RuntimeLimits | None = None

    _type = field_validator("type", mode="before")(_one_of(("python",), "runtime type"))

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _invalid(
                f'must be a string like "3.11+", got {describe_value(value)}; quote it in YAML: '
                f'version: "3.11+"'
            )
        match = _PYTHON_VERSION.match(value)
        if not match:
            raise _invalid(f'{value!r} is not a Python version; write "3.11+" or "3.12"')
        if (int(match[1]), int(match[2])) < (3, 11):
            raise _invalid(f"{value!r} is too old: the SDK needs Python 3.11 or newer")
        return value

    @field_validator("entrypoint", mode="before")
    @classmethod
    def _entrypoint(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _invalid(f"must be a file name like 'main.py', got {describe_value(value)}")
        parts = value.split("/")
        if value.startswith("/") or "\\" in value or ".." in parts or not value.endswith(".py"):
            raise _invalid(
                f"{value!r} must be a .py file inside the plugin folder, "
                "written relative to it with '/' (like 'main.py' or 'src/main.py')"
            )
        return value


class _MetadataFields(_Strict):
    id: str
    name: str
    version: str
    description: str = ""
    author: str = ""
    type: PluginType = "backend"
    category: Category | None = None
    homepage: str | None = None
    repository: str | None = None
    license: str | None = None
    keywords: tuple[Keyword, ...] = Field(default=(), max_length=20)
    pricing: Pricing = Field(default_factory=Pricing)

    _id = field_validator("id", mode="before")(_check_id)
    _version = field_validator("version", mode="before")(_check_version)
    _name = field_validator("name", mode="before")(_text(100, blank=False))
    _description = field_validator("description", mode="before")(_text(2000))
    _author = field_validator("author", mode="before")(_text(200))
    _license = field_validator("license", mode="before")(_optional(_text(100, blank=False)))
    _type = field_validator("type", mode="before")(_one_of(PLUGIN_TYPES, "plugin type"))
    _category = field_validator("category", mode="before")(
        _optional(_one_of(CATEGORIES, "category"))
    )
    _urls = field_validator("homepage", "repository", mode="before")(_check_url)
    _keywords = field_validator("keywords", mode="before")(_null_is_empty)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in ``plugin.yaml`` field order; fields left unset are left out."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self) -> str:
        """The ``plugin.yaml`` text of this manifest; :func:`parse_manifest` reads it back."""
        return yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False
        )


class PluginMetadata(_MetadataFields):
    """Who a plugin is: ``plugin.metadata`` (``id``, ``name``, ``version``, ``category``...)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> PluginMetadata:
        """Validated metadata; raises :class:`ManifestError` listing every problem."""
        return _validate(cls, data, source, EMPTY_LINE_MAP, [])


class Manifest(_MetadataFields):
    """Everything ``plugin.yaml`` declares: metadata, permissions, hooks, routes, config, runtime.

    ``permissions`` is ``None`` when the manifest lists none (no limit, as in
    tests); an empty list means the plugin may make no API call.
    """

    permissions: tuple[Permission, ...] | None = None
    hooks: tuple[HookEntry, ...] = ()
    routes: tuple[RouteEntry, ...] = ()
    config_schema: dict[str, Any] | None = None
    runtime: Runtime = Field(default_factory=Runtime)

    _lists = field_validator("hooks", "routes", mode="before")(_null_is_empty)

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> Manifest:
        if info.context and info.context.get(_RULES_CHECKED_BY_CALLER):
            return self
        violations = _rule_violations(self.to_dict())
        if violations:
            message = "; ".join(f"{format_path(loc)}: {text}" for loc, text in violations)
            raise PydanticCustomError(_RULE_ERROR, "{message}", {"message": message})
        return self

    @cached_property
    def metadata(self) -> PluginMetadata:
        """The metadata part of the manifest (what ``plugin.metadata`` returns)."""
        fields = {name: getattr(self, name) for name in PluginMetadata.model_fields}
        return PluginMetadata.model_construct(**fields)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Manifest:
        """A manifest from already-parsed data; raises :class:`ManifestError` listing every problem.

        ``source`` names where the data came from in error messages.
        """
        return _validate(cls, data, source, EMPTY_LINE_MAP, [])


# ==================== loading ====================


def load_manifest(path: str | Path) -> Manifest:
    """Read ``plugin.yaml`` (``path`` is the file or the plugin folder holding it).

    Raises :class:`ManifestError` if the file is missing, is not YAML, or
    breaks a rule; each problem names the field and its line.
    """
    location = Path(path)
    file = location / MANIFEST_FILE if location.is_dir() else location
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = ""
        if file.name == MANIFEST_FILE and file.with_name("plugin.yml").is_file():
            hint = "; found plugin.yml: rename it to plugin.yaml"
        elif location.is_dir():
            hint = "; run `ops-center-plugin init` to create a plugin"
        problem = Problem("", f"file not found: {file}{hint}", file=str(file))
        raise ManifestError(f"no plugin manifest at {file}", [problem]) from None
    except UnicodeDecodeError as exc:
        problem = Problem("", f"not UTF-8 text: {exc}", file=str(file))
        raise ManifestError(f"{file} cannot be read", [problem]) from None
    except OSError as exc:
        problem = Problem("", exc.strerror or str(exc), file=str(file))
        raise ManifestError(f"{file} cannot be read", [problem]) from None
    return parse_manifest(text, source=str(file))


def parse_manifest(text: str, *, source: str = MANIFEST_FILE) -> Manifest:
    """A manifest from ``plugin.yaml`` text; ``source`` names the file in errors."""
    try:
        data, lines = load_yaml_with_lines(text, source)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source} is not valid YAML", [syntax_problem(exc, source)]) from None
    if data is None:
        problem = Problem("", "the manifest is empty; it needs at least id, name and version")
        raise ManifestError(f"{source} is empty", [replace(problem, file=source)])
    if not isinstance(data, dict):
        problem = Problem(
            "",
            f"must be a mapping of fields (id: ..., name: ...), got {describe_value(data)}",
            line=1,
            file=source,
        )
        raise ManifestError(f"{source} is not a mapping", [problem])
    return _validate(Manifest, data, source, lines, duplicate_key_problems(lines, source))


def _validate(
    model: type[M], data: Any, source: str | None, lines: LineMap, problems: list[Problem]
) -> M:
    label = source or "plugin manifest"
    if not isinstance(data, Mapping):
        problem = Problem(
            "", f"must be a mapping of fields, got {describe_value(data)}", file=source
        )
        raise ManifestError(f"{label} is not a mapping", [problem])
    violations: list[Violation] = list(non_json_values(data))
    result: M | None = None
    rule_messages: list[str] = []
    try:
        result = model.model_validate(dict(data), context={_RULES_CHECKED_BY_CALLER: True})
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] == _RULE_ERROR:
                rule_messages.append(error["msg"])
            else:
                violations.append((tuple(error["loc"]), _message(error, model)))
    rules = _rule_violations(data)
    if not rules:
        rules = [((), message) for message in rule_messages]
    violations += rules
    problems = problems + [
        Problem(format_path(loc), message, line=lines.line_of(loc), file=source)
        for loc, message in dict.fromkeys(violations)
    ]
    if problems:
        problems.sort(key=lambda problem: problem.line if problem.line is not None else 1 << 30)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ManifestError(f"{label}: {count}", problems)
    assert result is not None
    return result


# ==================== messages ====================

_KIND_OF = {
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    """A pydantic error as a sentence about the manifest field."""
    kind = error["type"]
    value = error.get("input")
    context = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        allowed = _fields_at(model, loc[:-1])
        return (
            f"unknown field{_did_you_mean(loc[-1], allowed)} "
            f"Allowed fields here: {', '.join(allowed)}."
        )
    if kind in _KIND_OF:
        return f"must be {_KIND_OF[kind]}, got {describe_value(value)}"
    if kind == "greater_than_equal":
        return f"must be >= {context.get('ge')}, got {value}"
    if kind in ("too_short", "too_long"):
        side = "at least" if kind == "too_short" else "at most"
        bound = context.get("min_length" if kind == "too_short" else "max_length")
        return f"must have {side} {bound} item(s), got {context.get('actual_length')}"
    return str(error["msg"])


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found at ``loc`` (for "did you mean")."""
    current: type[BaseModel] = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        nested = _model_in(field.annotation) if field is not None else None
        if nested is None:
            return []
        current = nested
    return list(current.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


# ==================== rules across fields ====================


def _pricing_problem(model: str, price: float) -> str | None:
    if model == "free" and price != 0:
        return (
            f"must be 0 for a free plugin, got {price}; "
            "to charge, set model: one-time or subscription"
        )
    if model != "free" and price == 0:
        return f"must be more than 0 for a {model} plugin; a plugin without a price is model: free"
    return None


def _rule_violations(data: Mapping[str, Any]) -> list[Violation]:
    """Rules that look at more than one field, checked on the raw data.

    They run even when some fields are broken, so one load reports all problems.
    """
    plugin_id = data.get("id") if isinstance(data.get("id"), str) else ""
    violations: list[Violation] = []
    pricing = data.get("pricing")
    if isinstance(pricing, Mapping):
        model, price = pricing.get("model", "free"), pricing.get("price", 0)
        if (
            model in PRICING_MODELS
            and isinstance(price, int | float)
            and not isinstance(price, bool)
        ):
            problem = _pricing_problem(model, price)
            if problem:
                violations.append((("pricing", "price"), problem))
    for field in ("keywords", "permissions"):
        violations += _repeats(field, data.get(field))
    violations += _hook_violations(data.get("hooks"), str(plugin_id))
    violations += _route_violations(data.get("routes"))
    schema = data.get("config_schema")
    if isinstance(schema, Mapping):
        violations += [
            (("config_schema", *loc), text) for loc, text in config_schema_problems(schema)
        ]
    return violations


def _repeats(field: str, items: Any) -> list[Violation]:
    if not isinstance(items, list | tuple):
        return []
    seen: dict[Any, int] = {}
    violations: list[Violation] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            continue
        if item in seen:
            violations.append(
                ((field, index), f"{item!r} is already listed at {field}[{seen[item]}]")
            )
        else:
            seen[item] = index
    return violations


def _hook_violations(hooks: Any, plugin_id: str) -> list[Violation]:
    if not isinstance(hooks, list | tuple):
        return []
    violations: list[Violation] = []
    seen: dict[tuple[str, str], int] = {}
    for index, hook in enumerate(hooks):
        if not isinstance(hook, Mapping) or not isinstance(hook.get("event"), str):
            continue
        event = hook["event"]
        if event not in FILTER_CATALOG:
            try:
                check_name(event, plugin_id)
            except UnknownEventError as exc:
                violations.append((("hooks", index, "event"), str(exc)))
        handler = hook.get("handler")
        if isinstance(handler, str):
            first = seen.setdefault((event, handler), index)
            if first != index:
                violations.append(
                    (
                        ("hooks", index),
                        f"repeats hooks[{first}]: {handler!r} is already declared for {event!r}",
                    )
                )
    return violations


def _route_violations(routes: Any) -> list[Violation]:
    if not isinstance(routes, list | tuple):
        return []
    violations: list[Violation] = []
    seen: dict[tuple[str, str], int] = {}
    for index, route in enumerate(routes):
        if not isinstance(route, Mapping) or not isinstance(route.get("path"), str):
            continue
        path = route["path"]
        # /devices/{id} and /devices/{device_id} match the same URLs.
        shape = _ROUTE_PARAM.sub("{}", path)
        methods = _single_is_list(route.get("methods", ["GET"]))
        if not isinstance(methods, list | tuple):
            continue
        for position, method in enumerate(methods):
            if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
                continue
            first = seen.setdefault((shape, method.upper()), index)
            earlier = [m.upper() for m in methods[:position] if isinstance(m, str)]
            if first == index and method.upper() in earlier:
                violations.append(
                    (("routes", index, "methods", position), f"{method.upper()} is listed twice")
                )
            elif first != index:
                violations.append(
                    (
                        ("routes", index),
                        f"{method.upper()} {path} is already declared by routes[{first}] "
                        f"({routes[first].get('path')})",
                    )
                )
    return violations
