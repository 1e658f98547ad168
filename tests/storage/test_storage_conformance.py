"""The storage contract, run against every backend (memory, SQLite, Redis)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from ops_center_sdk.storage import JSON_NULL, Storage, StorageBackend

if TYPE_CHECKING:
    from conftest import BackendOpener, FakeClock

# ---------------------------------------------------------------- the spec's example


async def test_readme_example(storage: Storage) -> None:
    await storage.set("key", {"data": "value"})
    await storage.set("counter", 42)

    assert await storage.get("key") == {"data": "value"}
    assert await storage.get("counter", default=0) == 42
    assert await storage.get("missing", default=0) == 0
    assert await storage.exists("key")

    await storage.set("device:1", {"name": "web-1"})
    await storage.set("device:2", {"name": "web-2"})
    assert await storage.list_keys("device:*") == ["device:1", "device:2"]

    assert await storage.delete("key") is True
    assert await storage.delete("key") is False
    assert not await storage.exists("key")

    assert await storage.clear() == 3
    assert await storage.list_keys() == []


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**80,
        1.5,
        -0.25,
        1e300,
        "",
        "héllo wörld ✓ 日本",
        'quotes " and \\ and \n newlines',
        "\ud800 lone surrogate",
        [],
        {},
        [1, "two", None, [3.0, {"four": False}]],
        {"nested": {"list": [1, 2, {"deep": "x"}]}, "empty": {}},
    ],
    ids=repr,
)
async def test_json_values_round_trip(storage: Storage, value: Any) -> None:
    await storage.set("value", value)
    got = await storage.get("value", default="absent")
    assert got == value
    assert type(got) is type(value)


async def test_stored_null_is_not_the_default(storage: Storage) -> None:
    await storage.set("nothing", None)
    assert await storage.exists("nothing")
    assert await storage.get("nothing", default="absent") is None


async def test_values_read_back_are_fresh_copies(storage: Storage) -> None:
    tags = ["a"]
    device: dict[str, Any] = {"name": "web-1", "tags": tags}
    await storage.set("device", device)
    device["name"] = "changed"
    tags.append("b")

    first = await storage.get("device")
    first["tags"].append("c")

    assert await storage.get("device") == {"name": "web-1", "tags": ["a"]}


async def test_dict_key_order_is_kept(storage: Storage) -> None:
    await storage.set("ordered", {"b": 1, "a": 2, "c": 3})
    assert list(await storage.get("ordered")) == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"a", "b"}, ["value is a set", "list"]),
        (b"raw", ["value is a bytes"]),
        (datetime(2024, 1, 1, tzinfo=UTC), ["value is a datetime", "isoformat"]),
        (Decimal("1.5"), ["value is a Decimal"]),
        ((1, 2), ["value is a tuple", "list"]),
        (math.nan, ["value is nan"]),
        (math.inf, ["value is inf"]),
        (object(), ["value is a object"]),
        ({1: "one"}, ["int key 1", "str"]),
        ({None: "x"}, ["NoneType key None"]),
        ({"ok": [1, {"when": datetime(2024, 1, 1)}]}, ["value['ok'][1]['when'] is a datetime"]),
        ([1, 2, [float("-inf")]], ["value[2][0] is -inf"]),
    ],
    ids=lambda item: None if isinstance(item, list) else type(item).__name__,
)
async def test_non_json_values_are_refused_and_nothing_is_written(
    storage: Storage, value: Any, words: list[str]
) -> None:
    await storage.set("thing", "before")

    with pytest.raises(TypeError) as error:
        await storage.set("thing", value)

    message = str(error.value)
    assert "'thing'" in message
    for word in words:
        assert word in message
    assert await storage.get("thing") == "before"


async def test_self_containing_value_is_refused(storage: Storage) -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(TypeError, match=r"'cycle'.*value\[1\] contains itself"):
        await storage.set("cycle", loop)
    assert not await storage.exists("cycle")


async def test_int_too_long_for_json_text_names_the_key(storage: Storage) -> None:
    with pytest.raises(ValueError, match=r"storage value for key 'huge' cannot be written as JSON"):
        await storage.set("huge", 10**5000)
    with pytest.raises(ValueError, match=r"key 'batch'"):
        await storage.set_many({"fine": 1, "batch": [10**5000]})
    assert await storage.get_many(["huge", "fine", "batch"]) == {}


async def test_shared_but_not_cyclic_values_are_fine(storage: Storage) -> None:
    shared = {"x": 1}
    await storage.set("twice", [shared, shared])
    assert await storage.get("twice") == [{"x": 1}, {"x": 1}]


async def test_set_many_with_one_bad_value_writes_nothing(storage: Storage) -> None:
    await storage.set("a", 1)

    with pytest.raises(TypeError, match="'b'"):
        await storage.set_many({"a": 2, "b": {1, 2}, "c": 3})

    assert await storage.get_many(["a", "b", "c"]) == {"a": 1}


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("key", "error", "words"),
    [
        ("", ValueError, "empty"),
        (5, TypeError, "int 5"),
        (None, TypeError, "NoneType None"),
        (b"raw", TypeError, "bytes b'raw'"),
        ("a\x00b", ValueError, "'a\\x00b' contains a NUL"),
        ("bad\udc80", ValueError, "'bad\\udc80' is not valid Unicode"),
    ],
    ids=repr,
)
async def test_bad_keys_are_refused_by_every_operation(
    storage: Storage, key: Any, error: type[Exception], words: str
) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: storage.get(key),
        lambda: storage.set(key, 1),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.compare_and_set(key, None, 1),
        lambda: storage.increment(key),
        lambda: storage.get_many([key]),
        lambda: storage.set_many({"good": 1, key: 2}),
    ]
    for call in calls:
        with pytest.raises(error, match="storage key") as raised:
            await call()
        assert words in str(raised.value)
    assert await storage.list_keys() == []


async def test_unusual_but_valid_keys(storage: Storage) -> None:
    keys = ["a b", "ünï:cødé", "a*b", "x?y", "[z]", "50%_off", "line\nbreak", "\U0010ffff", " "]
    for index, key in enumerate(keys):
        await storage.set(key, index)
    for index, key in enumerate(keys):
        assert await storage.get(key) == index
    assert await storage.list_keys() == sorted(keys)


# ---------------------------------------------------------------- list_keys


@pytest.fixture
async def globbed(storage: Storage) -> Storage:
    keys = [
        "device:1",
        "device:2",
        "device:10",
        "device:1:last_check",
        "device",
        "devices:1",
        "alert:a",
        "alert:b",
        "alert:ab",
        "a*b",
        "a?b",
        "axb",
        "a[b",
        "50%_off:1",
        "50%Xoff:1",
        "50%_offx",
        "5000_off:1",
        "under_score",
        "underXscore",
    ]
    await storage.set_many({key: True for key in keys})
    return storage


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("device:*", ["device:1", "device:10", "device:1:last_check", "device:2"]),
        ("device:?", ["device:1", "device:2"]),
        ("device:1*", ["device:1", "device:10", "device:1:last_check"]),
        ("device:*:last_check", ["device:1:last_check"]),
        ("device", ["device"]),
        ("device:1", ["device:1"]),
        ("nothing*", []),
        ("alert:[ab]", ["alert:a", "alert:b"]),
        ("alert:[!a]", ["alert:b"]),
        ("alert:[a-b]?", ["alert:ab"]),
        ("*:a*", ["alert:a", "alert:ab"]),
        ("a[*]b", ["a*b"]),
        ("a[?]b", ["a?b"]),
        ("a?b", ["a*b", "a?b", "a[b", "axb"]),
        ("a[[]b", ["a[b"]),
        ("50%_off:*", ["50%_off:1"]),
        ("50%_off*", ["50%_off:1", "50%_offx"]),
        ("under_score", ["under_score"]),
        ("*_*", ["50%_off:1", "50%_offx", "5000_off:1", "device:1:last_check", "under_score"]),
    ],
)
async def test_list_keys_globs(globbed: Storage, pattern: str, expected: list[str]) -> None:
    assert await globbed.list_keys(pattern) == expected


async def test_list_keys_default_lists_everything_sorted(globbed: Storage) -> None:
    keys = await globbed.list_keys()
    assert keys == sorted(keys)
    assert len(keys) == 19


async def test_list_keys_refuses_a_non_str_pattern(storage: Storage) -> None:
    with pytest.raises(TypeError, match="pattern"):
        await storage.list_keys(b"*")  # type: ignore[arg-type]


async def test_list_keys_with_unicode_prefix(storage: Storage) -> None:
    await storage.set_many({"é:1": 1, "é:2": 2, "e:1": 3, "ê:1": 4, "\U0010ffff:1": 5})
    assert await storage.list_keys("é:*") == ["é:1", "é:2"]
    assert await storage.list_keys("\U0010ffff*") == ["\U0010ffff:1"]


# ---------------------------------------------------------------- namespaces


@pytest.mark.parametrize(
    ("first", "second"),
    [("plugin-a", "plugin-b"), ("plug", "plugin"), ("a", "a:k:x"), ("a}", "a"), ("n%3A", "n:")],
)
async def test_namespaces_are_isolated(backend: StorageBackend, first: str, second: str) -> None:
    one = Storage(backend, first)
    two = Storage(backend, second)
    await one.set("shared", "one's")
    await one.set("x:secret", 1)
    await two.set("shared", "two's")

    assert await one.get("shared") == "one's"
    assert await two.get("shared") == "two's"
    assert not await two.exists("x:secret")
    assert await two.get_many(["x:secret", "shared"]) == {"shared": "two's"}
    assert await two.list_keys() == ["shared"]
    assert await two.list_keys("x*") == []
    assert await two.delete("x:secret") is False
    assert await two.compare_and_set("x:secret", 1, 2) is False

    assert await two.clear() == 1
    assert await one.list_keys() == ["shared", "x:secret"]
    assert await one.get("x:secret") == 1


# ---------------------------------------------------------------- expiry


async def test_ttl_hides_the_key_from_every_operation(storage: Storage, clock: FakeClock) -> None:
    await storage.set("session", {"user": "ada"}, ttl=10)
    await storage.set("keep", 1)

    clock.advance(9.5)
    assert await storage.get("session") == {"user": "ada"}

    clock.advance(0.5)
    assert await storage.get("session", default="gone") == "gone"
    assert not await storage.exists("session")
    assert await storage.list_keys() == ["keep"]
    assert await storage.list_keys("sess*") == []
    assert await storage.get_many(["session", "keep"]) == {"keep": 1}
    assert await storage.compare_and_set("session", {"user": "ada"}, "x") is False
    assert await storage.delete("session") is False
    assert await storage.increment("session", 5) == 5


async def test_expired_key_counts_as_absent_for_compare_and_set(
    storage: Storage, clock: FakeClock
) -> None:
    await storage.set("lock", "old-owner", ttl=30)
    assert await storage.compare_and_set("lock", None, "me") is False
    clock.advance(30)
    assert await storage.compare_and_set("lock", None, "me") is True
    assert await storage.get("lock") == "me"


async def test_ttl_as_timedelta(storage: Storage, clock: FakeClock) -> None:
    await storage.set("k", 1, ttl=timedelta(minutes=1))
    clock.advance(59)
    assert await storage.exists("k")
    clock.advance(1)
    assert not await storage.exists("k")


async def test_set_without_ttl_removes_the_expiry(storage: Storage, clock: FakeClock) -> None:
    await storage.set("k", 1, ttl=5)
    await storage.set("k", 2)
    clock.advance(3600)
    assert await storage.get("k") == 2


async def test_clear_counts_only_live_keys(storage: Storage, clock: FakeClock) -> None:
    await storage.set_many({"a": 1, "b": 2}, ttl=5)
    await storage.set("c", 3)
    clock.advance(5)
    assert await storage.clear() == 1
    assert await storage.list_keys() == []


async def test_set_many_with_ttl(storage: Storage, clock: FakeClock) -> None:
    await storage.set_many({"a": 1, "b": 2}, ttl=5)
    assert await storage.get_many(["a", "b"]) == {"a": 1, "b": 2}
    clock.advance(5)
    assert await storage.get_many(["a", "b"]) == {}


async def test_expired_key_can_be_set_again(storage: Storage, clock: FakeClock) -> None:
    await storage.set("k", "old", ttl=1)
    clock.advance(2)
    await storage.set("k", "new")
    assert await storage.get("k") == "new"
    assert await storage.list_keys() == ["k"]


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (timedelta(0), ValueError),
        (timedelta(seconds=-5), ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("10", TypeError),
        (True, TypeError),
    ],
    ids=repr,
)
async def test_bad_ttl_is_refused_and_nothing_is_written(
    storage: Storage, ttl: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"ttl for storage key 'k'"):
        await storage.set("k", 1, ttl=ttl)
    with pytest.raises(error, match="ttl"):
        await storage.set_many({"k": 1}, ttl=ttl)
    with pytest.raises(error, match="ttl"):
        await storage.compare_and_set("k", None, 1, ttl=ttl)
    with pytest.raises(error, match="ttl"):
        await storage.increment("k", ttl=ttl)
    assert not await storage.exists("k")


# ---------------------------------------------------------------- compare-and-set


async def test_compare_and_set_on_absent_key(storage: Storage) -> None:
    assert await storage.compare_and_set("lock", None, "me") is True
    assert await storage.compare_and_set("lock", None, "you") is False
    assert await storage.get("lock") == "me"


async def test_compare_and_set_with_expected_value(storage: Storage) -> None:
    await storage.set("state", {"version": 1, "status": "up"})

    assert await storage.compare_and_set("state", {"version": 2, "status": "up"}, "x") is False
    assert await storage.compare_and_set("absent", {"version": 1}, "x") is False
    assert not await storage.exists("absent")
    assert await storage.get("state") == {"version": 1, "status": "up"}

    # Key order does not matter: the values are equal as JSON.
    new = {"version": 2, "status": "down"}
    assert await storage.compare_and_set("state", {"status": "up", "version": 1}, new) is True
    assert await storage.get("state") == new


@pytest.mark.parametrize(
    ("stored", "expected", "swapped"),
    [
        (1, 1.0, True),
        (1.0, 1, True),
        (True, 1, False),
        (1, True, False),
        (0, False, False),
        ("1", 1, False),
        ([1, 2], [2, 1], False),
        ({"a": None}, {}, False),
        ({"a": [1, {"b": True}]}, {"a": [1.0, {"b": True}]}, True),
    ],
    ids=repr,
)
async def test_compare_and_set_compares_as_json(
    storage: Storage, stored: Any, expected: Any, swapped: bool
) -> None:
    await storage.set("k", stored)
    assert await storage.compare_and_set("k", expected, "new") is swapped
    assert await storage.get("k") == ("new" if swapped else stored)


async def test_compare_and_set_on_stored_null_needs_json_null(storage: Storage) -> None:
    await storage.set("k", None)
    assert await storage.compare_and_set("k", None, "x") is False
    assert await storage.compare_and_set("k", JSON_NULL, "x") is True
    assert await storage.get("k") == "x"
    assert await storage.compare_and_set("k", JSON_NULL, "y") is False
    assert await storage.compare_and_set("absent", JSON_NULL, "y") is False


async def test_compare_and_set_with_ttl(storage: Storage, clock: FakeClock) -> None:
    assert await storage.compare_and_set("leader", None, "replica-1", ttl=30) is True
    clock.advance(30)
    assert await storage.compare_and_set("leader", None, "replica-2", ttl=30) is True
    assert await storage.get("leader") == "replica-2"


async def test_compare_and_set_refuses_bad_values(storage: Storage) -> None:
    await storage.set("k", 1)
    with pytest.raises(TypeError, match=r"storage value for key 'k'.*set"):
        await storage.compare_and_set("k", 1, {1})
    with pytest.raises(TypeError, match=r"storage expected value for key 'k'.*bytes"):
        await storage.compare_and_set("k", b"1", 2)
    assert await storage.get("k") == 1


# ---------------------------------------------------------------- increment


async def test_increment_counts(storage: Storage) -> None:
    assert await storage.increment("hits") == 1
    assert await storage.increment("hits") == 2
    assert await storage.increment("hits", 10) == 12
    assert await storage.increment("hits", -20) == -8
    assert await storage.get("hits") == -8
    assert type(await storage.get("hits")) is int


async def test_increment_keeps_ints_exact_and_mixes_floats(storage: Storage) -> None:
    await storage.set("big", 2**62)
    assert await storage.increment("big", 2**62) == 2**63
    assert await storage.increment("ratio", 0.5) == 0.5
    await storage.set("n", 1)
    result = await storage.increment("n", 0.25)
    assert result == 1.25
    assert isinstance(result, float)


@pytest.mark.parametrize(
    ("stored", "kind"),
    [("12", "string"), (True, "boolean"), ([1], "array"), ({"n": 1}, "object"), (None, "null")],
    ids=repr,
)
async def test_increment_refuses_non_numbers(storage: Storage, stored: Any, kind: str) -> None:
    await storage.set("k", stored)
    with pytest.raises(TypeError, match=rf"storage key 'k': it holds a JSON {kind}"):
        await storage.increment("k")
    assert await storage.get("k") == stored


@pytest.mark.parametrize(
    ("amount", "error"),
    [(True, TypeError), ("1", TypeError), (None, TypeError), (math.nan, ValueError)],
    ids=repr,
)
async def test_increment_refuses_bad_amounts(
    storage: Storage, amount: Any, error: type[Exception]
) -> None:
    await storage.set("k", 1)
    with pytest.raises(error, match=r"increment amount for storage key 'k'"):
        await storage.increment("k", amount)
    assert await storage.get("k") == 1


async def test_increment_overflow_is_refused(storage: Storage) -> None:
    await storage.set("k", 1e308)
    with pytest.raises(ValueError, match="not a finite number"):
        await storage.increment("k", 1e308)
    assert await storage.get("k") == 1e308


async def test_increment_ttl_applies_only_on_create(storage: Storage, clock: FakeClock) -> None:
    assert await storage.increment("window", ttl=60) == 1
    clock.advance(50)
    assert await storage.increment("window", ttl=60) == 2  # keeps the first expiry
    clock.advance(10)
    assert not await storage.exists("window")
    assert await storage.increment("window", ttl=60) == 1

    await storage.set("forever", 5)
    await storage.increment("forever", ttl=1)
    clock.advance(3600)
    assert await storage.get("forever") == 6


# ---------------------------------------------------------------- batches


async def test_get_many_and_set_many(storage: Storage) -> None:
    await storage.set_many({"a": 1, "b": [2], "c": {"three": 3}})
    got = await storage.get_many(["c", "missing", "a", "a"])
    assert got == {"c": {"three": 3}, "a": 1}
    assert list(got) == ["c", "a"]
    assert await storage.get_many([]) == {}
    await storage.set_many({})
    assert await storage.list_keys() == ["a", "b", "c"]


async def test_get_many_takes_any_iterable(storage: Storage) -> None:
    await storage.set_many({f"k{i}": i for i in range(5)})
    assert await storage.get_many(f"k{i}" for i in range(0, 5, 2)) == {"k0": 0, "k2": 2, "k4": 4}


async def test_get_many_refuses_a_single_string(storage: Storage) -> None:
    with pytest.raises(TypeError, match="not one key 'abc'"):
        await storage.get_many("abc")


async def test_set_many_refuses_a_non_mapping(storage: Storage) -> None:
    with pytest.raises(TypeError, match="mapping"):
        await storage.set_many([("a", 1)])  # type: ignore[arg-type]
    assert await storage.list_keys() == []


async def test_large_batches(storage: Storage) -> None:
    items = {f"item:{i:05d}": {"n": i} for i in range(2500)}
    await storage.set_many(items)
    got = await storage.get_many(items)
    assert got == items
    assert len(await storage.list_keys("item:01*")) == 1000
    assert await storage.clear() == 2500


# ---------------------------------------------------------------- persistence


async def test_data_survives_reopening(open_durable_store: BackendOpener, clock: FakeClock) -> None:
    open_store = open_durable_store
    first = Storage(open_store(), "plugin-a")
    await first.set("device:1", {"name": "web-1"})
    await first.set("session", "s", ttl=10)
    await first.increment("hits", 3)
    await first.close()

    again = Storage(open_store(), "plugin-a")
    assert await again.get("device:1") == {"name": "web-1"}
    assert await again.get("session") == "s"
    assert await again.get("hits") == 3
    assert await again.list_keys() == ["device:1", "hits", "session"]
    clock.advance(10)
    assert not await again.exists("session")


async def test_close_twice_is_harmless(storage: Storage) -> None:
    await storage.set("k", 1)
    await storage.close()
    await storage.close()


async def test_storage_as_async_context_manager(open_store: BackendOpener) -> None:
    async with Storage(open_store(), "plugin-a") as storage:
        await storage.set("k", 1)
        assert await storage.get("k") == 1


async def test_bad_namespace_is_refused(backend: StorageBackend) -> None:
    with pytest.raises(ValueError, match="namespace must not be empty"):
        Storage(backend, "")
    with pytest.raises(TypeError, match="namespace must be a str, got int"):
        Storage(backend, 7)  # type: ignore[arg-type]
