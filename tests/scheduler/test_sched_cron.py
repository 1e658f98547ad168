"""Cron expressions: what parses, what is refused and how the error says why, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops_center_sdk.errors import CronError, SchedulerError
from ops_center_sdk.scheduler import CronSchedule, parse_cron


def runs(schedule: CronSchedule, start: datetime, count: int) -> list[datetime]:
    times = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        times.append(moment)
    return times


def test_next_after_is_strictly_after_and_in_utc() -> None:
    schedule = parse_cron("*/5 * * * *")
    start = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    assert runs(schedule, start, 3) == [
        datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 15, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 20, tzinfo=UTC),
    ]
    mid_minute = datetime(2024, 1, 1, 0, 7, 30, tzinfo=UTC)
    assert schedule.next_after(mid_minute) == datetime(2024, 1, 1, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "first"),
    [
        ("0 */6 * * *", datetime(2024, 1, 1, 6, 0, tzinfo=UTC)),
        ("30 9 * * MON-FRI", datetime(2024, 1, 1, 9, 30, tzinfo=UTC)),  # 2024-01-01 is a Monday
        ("0 0 1 JAN,JUL *", datetime(2024, 7, 1, tzinfo=UTC)),
        ("0 12 L * *", datetime(2024, 1, 31, 12, 0, tzinfo=UTC)),
        ("0 8 * * MON#2", datetime(2024, 1, 8, 8, 0, tzinfo=UTC)),
        ("0 0 * * 7", datetime(2024, 1, 7, tzinfo=UTC)),  # 7 is Sunday too
        ("@hourly", datetime(2024, 1, 1, 1, 0, tzinfo=UTC)),
        ("@daily", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@weekly", datetime(2024, 1, 7, tzinfo=UTC)),
        ("@monthly", datetime(2024, 2, 1, tzinfo=UTC)),
        ("@yearly", datetime(2025, 1, 1, tzinfo=UTC)),
        ("  0   */6 * *   * ", datetime(2024, 1, 1, 6, 0, tzinfo=UTC)),
    ],
)
def test_standard_expressions_run_when_cron_would(expression: str, first: datetime) -> None:
    assert parse_cron(expression).next_after(datetime(2024, 1, 1, tzinfo=UTC)) == first


@pytest.mark.parametrize(
    ("expression", "field", "value", "allowed"),
    [
        ("61 * * * *", "minute", "61", "0-59"),
        ("*/0 * * * *", "minute", "*/0", "0-59"),
        ("a * * * *", "minute", "a", "0-59"),
        ("R * * * *", "minute", "R", "0-59"),
        ("* 24 * * *", "hour", "24", "0-23"),
        ("0 9-25 * * *", "hour", "9-25", "0-23"),
        ("* * 0 * *", "day-of-month", "0", "1-31"),
        ("* * 32 * *", "day-of-month", "32", "1-31"),
        ("* * * 13 *", "month", "13", "1-12"),
        ("* * * FOO *", "month", "FOO", "JAN-DEC"),
        ("* * * * 8", "day-of-week", "8", "0-6"),
        ("0 0 * * MON-XYZ", "day-of-week", "MON-XYZ", "SUN-SAT"),
    ],
)
def test_a_bad_field_is_named_with_its_value_and_range(
    expression: str, field: str, value: str, allowed: str
) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    message = str(caught.value)
    assert f"{field} field {value!r}" in message
    assert allowed in message
    assert repr(expression) in message


def test_only_the_wrong_field_is_blamed() -> None:
    with pytest.raises(CronError) as caught:
        parse_cron("0 0 * 13 *")
    message = str(caught.value)
    assert "month field '13'" in message
    for innocent in ("minute field", "hour field", "day-of-month field", "day-of-week field"):
        assert innocent not in message


@pytest.mark.parametrize(("expression", "count"), [("* * * *", 4), ("* * * * * *", 6), ("", 0)])
def test_wrong_field_count_says_how_many_and_which_fields(expression: str, count: int) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    message = str(caught.value)
    assert f"{count} field(s)" in message
    assert "minute hour day-of-month month day-of-week" in message


def test_random_values_are_refused_as_such() -> None:
    with pytest.raises(CronError, match=r"minute field 'R' uses random \(R\)"):
        parse_cron("R * * * *")


def test_unknown_alias_lists_the_known_ones() -> None:
    with pytest.raises(CronError, match=r"unknown alias '@reboot'.*@hourly"):
        parse_cron("@reboot")


def test_an_expression_that_never_runs_is_refused() -> None:
    with pytest.raises(CronError, match="never runs"):
        parse_cron("0 0 31 2 *")  # February 31st


def test_a_cron_expression_must_be_a_string() -> None:
    with pytest.raises(CronError, match="string"):
        parse_cron(5)  # type: ignore[arg-type]


def test_cron_error_is_a_value_error_and_a_scheduler_error() -> None:
    with pytest.raises(ValueError, match="minute"):
        parse_cron("99 * * * *")
    with pytest.raises(SchedulerError):
        parse_cron("99 * * * *")


def test_nine_in_paris_is_eight_utc_in_winter_and_seven_in_summer() -> None:
    schedule = parse_cron("0 9 * * *", "Europe/Paris")
    winter = schedule.next_after(datetime(2024, 1, 15, tzinfo=UTC))
    summer = schedule.next_after(datetime(2024, 7, 15, tzinfo=UTC))
    assert winter == datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    assert summer == datetime(2024, 7, 15, 7, 0, tzinfo=UTC)
    assert schedule.timezone_name == "Europe/Paris"


def test_a_time_skipped_by_the_clocks_going_forward_runs_right_after_the_jump() -> None:
    # Paris, 2024-03-31: 02:00 local becomes 03:00 (01:00 UTC); 02:30 does not exist.
    schedule = parse_cron("30 2 * * *", "Europe/Paris")
    assert runs(schedule, datetime(2024, 3, 30, 12, 0, tzinfo=UTC), 2) == [
        datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
        datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
    ]


def test_a_wall_time_repeated_by_the_clocks_going_back_runs_once() -> None:
    # Paris, 2024-10-27: 03:00 local goes back to 02:00, so 02:30 happens twice.
    schedule = parse_cron("30 2 * * *", "Europe/Paris")
    assert runs(schedule, datetime(2024, 10, 26, 12, 0, tzinfo=UTC), 2) == [
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
        datetime(2024, 10, 28, 1, 30, tzinfo=UTC),
    ]


def test_an_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(SchedulerError, match=r"unknown timezone 'Mars/Olympus'.*Europe/Paris"):
        parse_cron("0 9 * * *", "Mars/Olympus")
    for bad in ("", "Europe", "../etc/passwd"):
        with pytest.raises(SchedulerError, match="unknown timezone"):
            parse_cron("0 9 * * *", bad)


def test_next_after_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_cron("* * * * *").next_after(datetime(2024, 1, 1))


def test_utc_is_spelled_any_case_and_a_tzinfo_is_accepted() -> None:
    assert parse_cron("0 9 * * *", "utc").timezone_name == "UTC"
    fixed = parse_cron("0 9 * * *", UTC)
    assert fixed.next_after(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(
        2024, 1, 1, 9, 0, tzinfo=UTC
    )
    assert timedelta(0) == fixed.next_after(datetime(2024, 1, 1, tzinfo=UTC)).utcoffset()
