"""Daily counts (``GET /experiments?days=1``'s ``daily``): the calendar of the days, and a
counter's cumulative count at the end of each day.

The cumulative count of a counter at the end of day d is its total less what was counted
after d, so counts older than the daily series (the original Lamed's, or migrated ones)
belong to every day of it.
"""

from datetime import date, timedelta


def calendar(days) -> list[str]:
    """Every day from the first to the last of ``days`` (``YYYY-MM-DD``), gaps filled."""
    known = sorted(days)
    if not known:
        return []
    first, last = date.fromisoformat(known[0]), date.fromisoformat(known[-1])
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


def cumulative(totals: dict[tuple[str, str], int], daily: dict) -> list[tuple[str, dict[tuple[str, str], int]]]:
    """``(day, (event, variant) -> count at the end of that day)`` for every day of ``daily``
    (``{day: {event: {variant: count}}}``), for the counters of ``totals``; [] without days."""
    later = dict.fromkeys(totals, 0)
    series = []
    for day in reversed(calendar(daily)):
        series.append((day, {key: max(0, total - later[key]) for key, total in totals.items()}))
        for event, variants in daily.get(day, {}).items():
            for variant, count in variants.items():
                if (event, variant) in later:
                    later[event, variant] += count
    return series[::-1]
