"""Hostile glob patterns: storage ``list_keys`` and ``.opsignore``.

Every backend answers a pattern the way :func:`fnmatch.fnmatchcase` would on
the whole key, sorted by code point, all backends alike; a pattern no key
could be compared with (a NUL, a lone surrogate) is a ``ValueError`` naming
it on every backend. A bad ``.opsignore`` line is a ``PackageError`` naming
its line.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_center_sdk.packaging import PackageError, collect_files, load_ignore_spec
from ops_center_sdk.storage import MemoryStorage, RedisStorage, SqliteStorage, Storage
from redis_kit import NO_REDIS, REDIS_URL, fresh_redis_prefix

#: Examples each property runs (the report quotes these).
PATTERN_EXAMPLES = 200
KEYS_EXAMPLES = 100
IGNORE_EXAMPLES = 200

KEYS = [
    "device:1",
    "device:2",
    "device:10",
    "a*b",
    "a?b",
    "a[b",
    "a]b",
    "a\\b",
    "%",
    "_",
    "a%b",
    "!x",
    "-",
    "^",
    "A",
    "a",
    "ab",
    "ß",
    "é:1",
    "\n",
    "a\nb",
    "\U0010ffff",
    "a\U0010ffffb",
    "\ufffd",
    "device;",
]
PIECES = [*"*?[]!-^\\a:%_é\n", "device:", "\U0010ffff", "[!a]", "[a-z]", "[z-a]", "[*]", "[]]"]
patterns = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)
bad_patterns = st.tuples(patterns, st.sampled_from(["\x00", "\ud800", "\udfff"]), patterns).map(
    "".join
)
key_chars = st.sampled_from([*"ab:*?[]!%_\\-é\n", "\U0010ffff", "\U0010fffe"])
keys = st.lists(key_chars, min_size=1, max_size=5).map("".join)


@contextmanager
def every_backend(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, dict[str, object]]]:
    """An event loop and one backend of each kind (Redis unless it is left out)."""
    loop = asyncio.new_event_loop()
    backends: dict[str, object] = {
        "memory": MemoryStorage(),
        "sqlite": SqliteStorage(tmp_path / "storage.db"),
    }
    redis_prefixes = None if NO_REDIS else fresh_redis_prefix()
    if redis_prefixes is not None:
        backends["redis"] = RedisStorage(REDIS_URL, prefix=next(redis_prefixes))
    try:
        yield loop, backends
    finally:
        for backend in backends.values():
            loop.run_until_complete(backend.close())  # type: ignore[attr-defined]
        loop.close()
        if redis_prefixes is not None:
            for _ in redis_prefixes:  # deletes the prefix's keys
                pass


def stores(backends: dict[str, object], namespace: str) -> dict[str, Storage]:
    return {name: Storage(backend, namespace) for name, backend in backends.items()}  # type: ignore[arg-type]


async def _listed(store: Storage, pattern: str) -> list[str] | ValueError:
    try:
        return await store.list_keys(pattern)
    except ValueError as error:
        return error


def test_any_pattern_lists_what_fnmatch_matches_on_every_backend(tmp_path: Path) -> None:
    with every_backend(tmp_path) as (loop, backends):
        by_backend = stores(backends, "globs")
        for store in by_backend.values():
            loop.run_until_complete(store.set_many(dict.fromkeys(KEYS, 1)))

        @settings(max_examples=PATTERN_EXAMPLES, derandomize=True, deadline=None)
        @given(patterns | bad_patterns)
        def check(pattern: str) -> None:
            expected = sorted(key for key in KEYS if fnmatch.fnmatchcase(key, pattern))
            answers = {
                name: loop.run_until_complete(_listed(store, pattern))
                for name, store in by_backend.items()
            }
            refused = "\x00" in pattern or any(0xD800 <= ord(c) <= 0xDFFF for c in pattern)
            for name, answer in answers.items():
                if refused:
                    assert isinstance(answer, ValueError), (name, pattern, answer)
                    assert "pattern" in str(answer)
                    assert repr(pattern)[1:-1][:20] in str(answer)
                else:
                    assert answer == expected, (name, pattern)

        check()


def test_any_keys_and_a_glob_made_from_them_agree_across_backends(tmp_path: Path) -> None:
    with every_backend(tmp_path) as (loop, backends):
        examples = iter(range(10**6))

        @settings(
            max_examples=KEYS_EXAMPLES,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(keys, min_size=1, max_size=8, unique=True), st.data())
        def check(chosen: list[str], data: st.DataObject) -> None:
            # A pattern made from one of the keys, with some characters turned into wildcards.
            base = data.draw(st.sampled_from(chosen))
            pattern = "".join(
                data.draw(st.sampled_from([char, "?", "*", f"[{char}]", "[!x]"])) for char in base
            )
            by_backend = stores(backends, f"ns{next(examples)}")
            expected = sorted(key for key in chosen if fnmatch.fnmatchcase(key, pattern))
            for name, store in by_backend.items():
                loop.run_until_complete(store.set_many(dict.fromkeys(chosen, 0)))
                assert loop.run_until_complete(store.list_keys(pattern)) == expected, name
                assert loop.run_until_complete(store.list_keys()) == sorted(chosen), name

        check()


@pytest.mark.parametrize("bad", ["a\x00*", "\ud800*", "x[\udc80]"])
async def test_a_pattern_no_key_can_hold_is_a_value_error_naming_it(bad: str) -> None:
    store = Storage(MemoryStorage(), "plugin")
    with pytest.raises(ValueError, match="list_keys pattern") as caught:
        await store.list_keys(bad)
    assert "NUL" in str(caught.value) or "surrogate" in str(caught.value)


# ==================== .opsignore ====================

ignore_lines = st.lists(
    st.lists(st.sampled_from([*"!\\[]-*/?a #.", "**", "[z-a]", "\x00", " "]), max_size=5).map(
        "".join
    ),
    max_size=6,
)


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
@settings(
    max_examples=IGNORE_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ignore_lines)
def test_any_opsignore_is_a_spec_or_a_package_error_naming_the_line(
    tmp_path: Path, lines: list[str]
) -> None:
    folder = tmp_path / "plugin"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text("x = 1\n")
    (folder / ".opsignore").write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        spec = load_ignore_spec(folder)
    except PackageError as error:
        message = str(error)
        assert ".opsignore:" in message
        number = int(message.split(".opsignore:")[1].split(":")[0])
        assert 1 <= number <= len(lines)
        assert repr(lines[number - 1]) in message
        return
    assert spec is not None
    for path in ("main.py", "a/b.py", "a/", ".opsignore", "dir/sub/"):
        spec.match_file(path)
    collect_files(folder)


def test_an_opsignore_that_is_not_utf8_is_a_package_error(tmp_path: Path) -> None:
    (tmp_path / ".opsignore").write_bytes(b"dist/\n\xff\xfe*.log\n")
    with pytest.raises(PackageError, match=r"\.opsignore.* not UTF-8"):
        load_ignore_spec(tmp_path)


@pytest.mark.parametrize(("text", "line"), [("ok/\n!\n", 2), ("a\\\n", 1), ("x\n\n[z-a]\n", 3)])
def test_a_bad_opsignore_line_is_named_by_number(tmp_path: Path, text: str, line: int) -> None:
    (tmp_path / ".opsignore").write_text(text, encoding="utf-8")
    with pytest.raises(PackageError, match=rf"\.opsignore:{line}: ") as caught:
        load_ignore_spec(tmp_path)
    assert "gitignore" in str(caught.value)
