"""Cron expressions: parse once, then ask for the next run after a moment.

Standard five fields, ``minute hour day-of-month month day-of-week``, with
``*``, lists (``1,15``), ranges (``1-5``), steps (``*/5``), month and weekday
names (``JAN``, ``MON-FRI``), ``L`` (last day of the month) and ``#``
(``MON#2``, the second Monday), as read by the ``croniter`` library. When both
day fields are restricted a day matching either one matches (classic cron).
The aliases ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
(``@midnight``) and ``@hourly`` are accepted. A sixth field for seconds is
not: use ``run_in`` for anything finer than a minute.

An expression is evaluated in its time zone (UTC unless one is given), on the
wall clock of that zone: when clocks go forward, a time that does not exist
runs at the first minute after the jump; when they go back, a wall-clock time
that happens twice runs only the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from ..errors import CronError, SchedulerError

if TYPE_CHECKING:
    from croniter import croniter

FIELDS: tuple[tuple[str, str], ...] = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31 or L"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT (7 is also Sunday)"),
)

ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def resolve_timezone(zone: str | tzinfo) -> tuple[tzinfo, str]:
    """The ``tzinfo`` for an IANA name (or a ``tzinfo`` as given) and its name.

    >>> resolve_timezone("Europe/Paris")[1]
    'Europe/Paris'

    Raises :class:`~ops_center_sdk.errors.SchedulerError` for a name the time
    zone database does not know.
    """
    if isinstance(zone, tzinfo):
        return zone, str(getattr(zone, "key", None) or zone)
    if not isinstance(zone, str):
        raise TypeError(f"timezone must be an IANA name such as 'Europe/Paris', got {zone!r}")
    if zone.upper() == "UTC":
        return UTC, "UTC"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(zone), zone
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SchedulerError(
            f"unknown timezone {zone!r}: use an IANA time zone name such as "
            "'Europe/Paris', 'America/New_York' or 'UTC'"
        ) from None


@dataclass(frozen=True)
class CronSchedule:
    """A valid cron expression bound to the time zone it is evaluated in.

    Build one with :func:`parse_cron`; :meth:`next_after` gives run times.
    """

    expression: str
    timezone: tzinfo
    timezone_name: str

    def next_after(self, moment: datetime) -> datetime:
        """The first run time strictly after ``moment``, as an aware UTC datetime.

        >>> from datetime import datetime, UTC
        >>> parse_cron("*/5 * * * *").next_after(datetime(2024, 1, 1, 0, 5, tzinfo=UTC))
        datetime.datetime(2024, 1, 1, 0, 10, tzinfo=datetime.timezone.utc)
        """
        if moment.tzinfo is None:
            raise ValueError(f"next_after needs an aware datetime, got naive {moment.isoformat()}")
        from croniter import CroniterBadDateError, CroniterError

        try:
            iterator = _croniter(self.expression, moment.astimezone(self.timezone))
            while True:
                run: datetime = iterator.get_next(datetime)
                if not _repeats_earlier_wall_time(run):
                    return run.astimezone(UTC)
        except CroniterBadDateError:
            raise CronError(
                f"cron expression {self.expression!r} never runs (no date matches its "
                f"day-of-month, month and day-of-week fields; looked after {moment.isoformat()})"
            ) from None
        except CroniterError as exc:
            raise CronError(f"invalid cron expression {self.expression!r}: {exc}") from None


def parse_cron(expression: str, timezone: str | tzinfo = "UTC") -> CronSchedule:
    """Check a cron expression field by field and bind it to a time zone.

    >>> parse_cron("0 */6 * * *").expression
    '0 */6 * * *'

    Raises :class:`~ops_center_sdk.errors.CronError` naming the field that is
    wrong, its value and the values it allows, e.g. ``hour field '24' is not
    valid (allowed: 0-23 ...)``; and when the expression has no run time at
    all (``0 0 31 2 *``, February 31st).
    """
    if not isinstance(expression, str):
        raise CronError(f"a cron expression is a string such as '*/5 * * * *', got {expression!r}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise CronError(
                f"invalid cron expression {expression!r}: unknown alias {text!r} "
                f"(known: {', '.join(ALIASES)})"
            )
        text = ALIASES[text.lower()]
    fields = text.split(" ") if text else []
    if len(fields) != len(FIELDS):
        raise CronError(
            f"invalid cron expression {expression!r}: it has {len(fields)} field(s), "
            f"cron needs {len(FIELDS)}: {' '.join(name for name, _ in FIELDS)} "
            "(seconds are not supported)"
        )
    for position, value in enumerate(fields):
        _check_field(expression, position, value)
    zone, zone_name = resolve_timezone(timezone)
    schedule = CronSchedule(text, zone, zone_name)
    schedule.next_after(datetime.now(UTC))  # "0 0 31 2 *" parses but never runs
    return schedule


def _check_field(expression: str, position: int, value: str) -> None:
    from croniter import CroniterError

    name, allowed = FIELDS[position]
    problem = None
    if _uses_random_values(value):
        problem = "uses random (R) or hashed (H) values, which are not supported"
    else:
        probe = ["*"] * len(FIELDS)
        probe[position] = value
        try:
            _croniter(" ".join(probe), datetime(2024, 1, 1, tzinfo=UTC))
        except (CroniterError, ValueError, KeyError, IndexError, TypeError):
            problem = "is not valid"
    if problem is not None:
        raise CronError(
            f"invalid cron expression {expression!r}: {name} field {value!r} {problem} "
            f"(allowed: {allowed}, with * , - / for any, lists, ranges and steps)"
        )


def _uses_random_values(value: str) -> bool:
    letters = value.upper()
    for name in _MONTHS + _WEEKDAYS:
        letters = letters.replace(name, "")
    return "R" in letters or "H" in letters


def _croniter(expression: str, start: datetime) -> croniter:
    from croniter import croniter

    return croniter(expression, start)


def _repeats_earlier_wall_time(run: datetime) -> bool:
    """True for the second occurrence of a wall-clock time when clocks go back."""
    return bool(run.fold) and run.replace(fold=0).utcoffset() != run.utcoffset()
