"""UTC timestamps with nanosecond precision and leap-second-aware differences.

A :class:`UTCTime` holds ``elapsed_ns``: nanoseconds elapsed since 1970-01-01T00:00:00Z *counting every
inserted leap second* (so a difference of two values is a true SI-second interval), i.e.
``elapsed_ns = posix_ns + 1e9 * (leap seconds inserted before the instant)``.  POSIX time
(``datetime``, ``time.time``) silently drops leap seconds; e.g. 2016-12-31T23:59:59Z -> 2017-01-01T00:00:00Z
is 2 SI seconds, not 1.  The leap-second table is ``data/snews/leap_seconds.json`` (a list of dates on
whose last UTC minute a 61st second, ``23:59:60``, was inserted; IERS Bulletin C).  Before 1972 UTC had
no integer leap seconds, so earlier times are rejected.

ISO 8601 strings accepted: ``YYYY-MM-DDTHH:MM:SS[.fffffffff][Z|+00:00]`` (up to 9 fraction digits; a
missing zone means UTC, as in the SNEWS reference scenarios; any non-zero offset is rejected, because
SNEWS times are UTC by definition).  ``23:59:60`` is accepted only on a leap-second date.
"""
from __future__ import annotations

import calendar
import functools
import json
import re
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from importlib import resources

from cevns.errors import ConfigError, DataError

NS = 1_000_000_000
_ISO = re.compile(  # ASCII digits only (re.ASCII): "２０３０" is not a year
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$", re.ASCII
)
_MIN_YEAR = 1972


class TimeFormatError(ConfigError):
    """A timestamp is not a valid UTC ISO 8601 time."""


@functools.lru_cache(maxsize=1)
def leap_second_table() -> tuple[int, ...]:
    """POSIX seconds of the first instant *after* each inserted leap second (00:00:00 of the next day)."""
    try:
        text = resources.files("cevns.data.snews").joinpath("leap_seconds.json").read_text()
        dates = json.loads(text)
    except (OSError, ValueError) as exc:  # pragma: no cover - packaging error
        raise DataError(f"cannot read leap_seconds.json from cevns/data/snews: {exc}") from exc
    out = []
    for d in dates:
        y, m, day = (int(x) for x in d.split("-"))
        out.append(calendar.timegm((y, m, day, 23, 59, 59)) + 1)
    return tuple(sorted(out))


def _leaps_before(posix_s: int) -> int:
    """Number of leap seconds inserted before POSIX second ``posix_s``."""
    return bisect_right(leap_second_table(), posix_s)


@functools.lru_cache(maxsize=4096)
def _midnight(y: int, mo: int, d: int) -> int | None:
    """POSIX second of 00:00:00Z of a valid calendar date (year >= 1), None if there is no such date."""
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
        return None
    return calendar.timegm((y, mo, d, 0, 0, 0))


@functools.lru_cache(maxsize=1)
def _leap_elapsed() -> tuple[int, ...]:
    """Elapsed second (leap seconds counted) of each inserted leap second 23:59:60."""
    return tuple(t + i for i, t in enumerate(leap_second_table()))


def _is_leap_date(y: int, m: int, d: int) -> bool:
    return calendar.timegm((y, m, d, 23, 59, 59)) + 1 in set(leap_second_table())


@dataclass(frozen=True, order=True)
class UTCTime:
    """An instant in UTC, ``elapsed_ns`` = SI nanoseconds since 1970-01-01Z including leap seconds."""

    elapsed_ns: int

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: object, field: str = "time") -> "UTCTime":
        if isinstance(text, str) and len(text) < 64:
            try:
                return cls(_parse_cached(text))
            except TimeFormatError:
                pass  # re-parse below so that the error names the field
        return cls._parse(text, field)

    @classmethod
    def _parse(cls, text: object, field: str = "time") -> "UTCTime":
        if not isinstance(text, str):
            raise TimeFormatError(f"{field}: expected an ISO 8601 UTC string, got {type(text).__name__}")
        m = _ISO.match(text)
        if not m:
            raise TimeFormatError(
                f"{field}: {text[:60]!r} is not ISO 8601 UTC; allowed: YYYY-MM-DDTHH:MM:SS[.fffffffff][Z]"
            )
        g = m.groups()
        y, mo, d, hh, mi, ss = map(int, g[:6])
        frac, zone = g[6] or "", g[7]
        if zone not in (None, "Z", "+00:00", "+0000", "-00:00", "-0000"):
            raise TimeFormatError(f"{field}: {text!r} has UTC offset {zone}; allowed: Z, +00:00 or none (UTC)")
        if y < _MIN_YEAR:
            raise TimeFormatError(f"{field}: {text!r} is before {_MIN_YEAR} (no integer leap seconds); allowed: >= 1972")
        day = _midnight(y, mo, d)
        if day is None or not (hh < 24 and mi < 60):
            raise TimeFormatError(f"{field}: {text!r} is not a valid calendar date/time")
        frac_ns = int(frac.ljust(9, "0")) if frac else 0
        if ss == 60:
            if not (hh == 23 and mi == 59 and _is_leap_date(y, mo, d)):
                raise TimeFormatError(f"{field}: {text!r}: second 60 only exists at 23:59:60 on a leap-second date")
            posix = day + 86399
            return cls((posix + _leaps_before(posix) + 1) * NS + frac_ns)
        if ss > 60:
            raise TimeFormatError(f"{field}: {text!r}: seconds must be 0..59 (60 on leap-second dates)")
        posix = day + 3600 * hh + 60 * mi + ss
        return cls((posix + _leaps_before(posix)) * NS + frac_ns)

    @classmethod
    def from_posix_ns(cls, posix_ns: int) -> "UTCTime":
        return cls(posix_ns + _leaps_before(posix_ns // NS) * NS)

    @classmethod
    def now(cls) -> "UTCTime":
        return cls.from_posix_ns(time.time_ns())

    # -- conversion -----------------------------------------------------------------------------
    @staticmethod
    def _leap_elapsed_seconds() -> tuple[int, ...]:
        """Elapsed second (this scale) of each inserted leap second 23:59:60."""
        return _leap_elapsed()

    def to_posix_ns(self) -> int:
        """POSIX ns (a leap second 23:59:60.x maps onto 23:59:59.x, the POSIX convention)."""
        s, frac = divmod(self.elapsed_ns, NS)
        leaps = self._leap_elapsed_seconds()
        n = bisect_left(leaps, s)  # leap seconds strictly before s
        if n < len(leaps) and leaps[n] == s:
            return (s - n - 1) * NS + frac
        return (s - n) * NS + frac

    def isoformat(self) -> str:
        """ISO 8601 with 9 fraction digits and ``Z``; a leap second prints as ``23:59:60``."""
        s, frac = divmod(self.elapsed_ns, NS)
        leaps = self._leap_elapsed_seconds()
        n = bisect_left(leaps, s)
        if n < len(leaps) and leaps[n] == s:
            t = time.gmtime(s - n - 1)
            return time.strftime("%Y-%m-%dT%H:%M:", t) + f"60.{frac:09d}Z"
        t = time.gmtime(s - n)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}Z"

    def __sub__(self, other: "UTCTime") -> int:
        """Leap-second-aware difference in SI nanoseconds."""
        if not isinstance(other, UTCTime):
            return NotImplemented
        return self.elapsed_ns - other.elapsed_ns

    def add_ns(self, ns: int) -> "UTCTime":
        return UTCTime(self.elapsed_ns + int(ns))

    def __str__(self) -> str:
        return self.isoformat()


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str) -> int:
    return UTCTime._parse(text, "time").elapsed_ns


def diff_seconds(a: str | UTCTime, b: str | UTCTime) -> float:
    """``a - b`` in SI seconds, leap seconds included."""
    a = a if isinstance(a, UTCTime) else UTCTime.parse(a)
    b = b if isinstance(b, UTCTime) else UTCTime.parse(b)
    return (a - b) / NS
