"""Metaflow's ``@schedule`` cron expressions, checked and turned into calendar ranges.

Metaflow documents ``@schedule(cron=...)`` as an AWS EventBridge expression: six fields,
``minute hour day-of-month month day-of-week year``, ``?`` for "no specific value" in one
of the day fields. Argo Workflows drops the year and reads the rest as a standard cron
line, so five fields are accepted too. Only what means the same on both schedulers, and
what a Temporal calendar can express, passes:

- day-of-week by name (``SUN``-``SAT``): EventBridge numbers Sunday 1, standard cron 0,
  so a number would silently shift the day on one of them;
- no ``L``, ``W`` or ``#`` (Argo's and Temporal's parsers have none);
- not both day fields restricted (EventBridge forbids it, cron ORs them, Temporal ANDs).

Pure standard library: the generator validates with it and the worker builds the
Temporal ``ScheduleSpec`` from the same ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A range of matching values as Temporal stores it: start, end (inclusive), step.
Range = tuple[int, int, int]

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week", "year")
# Temporal's calendar knows the years 2000-2100 only.
BOUNDS = {
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 6),
    "year": (2000, 2100),
}
MONTHS = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
NAMES = {
    "month": {name: i + 1 for i, name in enumerate(MONTHS)},
    "day-of-week": {name: i for i, name in enumerate(DAYS)},
}
_INTEGER = re.compile(r"\d+")


class CronError(ValueError):
    """An expression the generated schedule cannot honour; ``field`` indexes FIELDS."""

    def __init__(self, message: str, hint: str, field: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field


@dataclass(frozen=True)
class Calendar:
    """The matching values of each field; ``year == ()`` matches every year."""

    minute: tuple[Range, ...]
    hour: tuple[Range, ...]
    day_of_month: tuple[Range, ...]
    month: tuple[Range, ...]
    day_of_week: tuple[Range, ...]
    year: tuple[Range, ...] = ()


def parse(expression: str) -> Calendar:
    """Check a Metaflow cron expression and return its calendar (raises CronError)."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError(
            f"cron expression {expression!r} has {len(fields)} fields, expected 6 "
            "(or 5 without the year)",
            "write `minute hour day-of-month month day-of-week year` as in "
            "EventBridge, e.g. '0 12 * * ? *' (Argo's five fields without the year work too)",
        )
    fields += ["*"] * (6 - len(fields))
    ranges = [_field(i, text) for i, text in enumerate(fields)]
    dom, dow = fields[2], fields[4]
    if dom not in ("*", "?") and dow not in ("*", "?"):
        raise CronError(
            f"cron expression {expression!r} restricts both day-of-month ({dom}) "
            f"and day-of-week ({dow})",
            "put `?` in one of the two day fields (EventBridge requires it; cron would "
            "match either day, Temporal both)",
            4,
        )
    if fields[5] in ("*", "?"):
        ranges[5] = ()
    return Calendar(*ranges)


def _field(index: int, text: str) -> tuple[Range, ...]:
    name = FIELDS[index]
    if not text or any(not item for item in text.split(",")):
        raise CronError(
            f"cron {name} field {text!r} has an empty item", _hint(name), index
        )
    return tuple(_item(index, name, item) for item in text.split(","))


def _item(index: int, name: str, item: str) -> Range:
    low, high = BOUNDS[name]

    def fail(message: str, hint: str | None = None) -> CronError:
        return CronError(f"cron {name} field: {message}", hint or _hint(name), index)

    if item == "?":
        if name not in ("day-of-month", "day-of-week"):
            raise fail("`?` is only allowed in the day-of-month and day-of-week fields")
        return (low, high, 1)
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _INTEGER.fullmatch(step_text) or int(step_text) < 1:
            raise fail(f"{item!r} has an invalid increment {step_text!r}")
        step = int(step_text)
    if base == "*":
        return (low, high, step)
    first, dash, last = base.partition("-")
    start = _value(name, first, fail)
    end = _value(name, last, fail) if dash else (high if slash else start)
    if end < start:
        raise fail(
            f"{item!r} is a range that runs backwards",
            "write the range from the smaller to the larger value, or list both parts",
        )
    return (start, end, step)


def _value(name: str, text: str, fail) -> int:
    if name in NAMES and text.upper() in NAMES[name]:
        return NAMES[name][text.upper()]
    if not _INTEGER.fullmatch(text):
        if any(mark in text.upper() for mark in "LW#"):
            raise fail(
                f"{text!r} uses L, W or #",
                "Temporal schedules (and Argo) have no last-day, weekday or nth-day "
                "markers; list the days explicitly",
            )
        raise fail(f"{text!r} is not a valid value")
    if name == "day-of-week":
        raise fail(
            f"numeric day {text!r} is ambiguous",
            "EventBridge counts SUN as 1 and Argo/cron as 0; write the day's name "
            "(SUN, MON, TUE, WED, THU, FRI, SAT)",
        )
    value = int(text)
    low, high = BOUNDS[name]
    if not low <= value <= high:
        raise fail(f"{value} is out of range {low}-{high}")
    return value


def _hint(name: str) -> str:
    if name == "day-of-week":
        return "day-of-week takes `*`, `?`, names SUN-SAT, ranges and lists (MON-FRI, SAT,SUN)"
    low, high = BOUNDS[name]
    names = " or JAN-DEC" if name == "month" else ""
    return f"{name} takes `*`, values {low}-{high}{names}, ranges a-b, lists a,b and increments a/n"
