"""Read the human work out of an XES event log, whatever tool wrote it.

Tools spell the XES namespace differently: `http://www.xes-standard.org/` (the standard,
OpenXES, ProM), `http://www.xes-standard.org` without the slash (Disco and several
process-mining tools), `http://code.deckfour.org/xes` (older OpenXES), or none at all (pm4py's
CSV exports). The reader ignores the namespace and reads the local tag names.

Two shapes of event are understood (pairing rules in touches.py): lifecycle events
(`lifecycle:transition` SCHEDULE / START / COMPLETE, any case) and interval events that carry
their own `start_timestamp` beside `time:timestamp`. An event without either is a COMPLETE
(the XES default) and counts as instantaneous.

The case value (for value-weighted lateness) is a trace attribute, `AMOUNT_REQ` by default
(BPIC 2012's requested loan amount). The result is cached (touches.cached).
"""

from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from handoff.analytics.simulation.touches import NAN
from handoff.analytics.simulation.touches import Event
from handoff.analytics.simulation.touches import ParsedLog
from handoff.analytics.simulation.touches import cached
from handoff.analytics.simulation.touches import iso_times
from handoff.analytics.simulation.touches import lifecycle
from handoff.analytics.simulation.touches import note_example
from handoff.analytics.simulation.touches import touches_from_cases

START_KEYS = ("start_timestamp", "time:start", "start_time")
_ATTRIBUTE_TAGS = {"string", "date", "int", "float", "boolean", "id"}
_times = iso_times  # the name older callers use


def load_touches(
    path: str | Path,
    cache_dir: str | Path | None = None,
    value_attribute: str = "AMOUNT_REQ",
    activity_prefix: str = "",
) -> ParsedLog:
    """Touches of an XES log (gzip or plain), from the cache when the file has not changed."""
    path = Path(path)
    return cached(
        path,
        f"xes-{value_attribute}-{activity_prefix}",
        cache_dir,
        lambda: parse_xes(path, value_attribute=value_attribute, activity_prefix=activity_prefix),
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open(path: Path):
    with path.open("rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else path.open("rb")


READ_CHUNK = 1 << 22  # bytes fed to the parser at a time (iterparse feeds 16 KB)


def _xml_events(f) -> Iterator[tuple[str, ET.Element]]:  # noqa: ANN001
    """("start" | "end", element) as `ET.iterparse` gives them, the file fed in 4 MB chunks:
    expat scans a token cut by a chunk's end again from its start with every chunk, so with
    iterparse's 16 KB a 50 MB attribute value took minutes (8 MB: 4.7 s, here 0.07 s)."""
    parser = ET.XMLPullParser(events=("start", "end"))
    while chunk := f.read(READ_CHUNK):
        parser.feed(chunk)
        yield from parser.read_events()
    parser.close()  # a document cut short or empty raises here, as iterparse does
    yield from parser.read_events()


def _traces(path: Path) -> Iterator[tuple[dict[str, str], list[dict[str, str]]]]:
    """Yield (trace attributes, [event attribute dicts]) per trace, streaming, any namespace."""
    with _open(path) as f:
        depth_event = 0
        in_trace = False
        case_attrs: dict[str, str] = {}
        events: list[dict[str, str]] = []
        for action, el in _xml_events(f):
            tag = _local(el.tag)
            if action == "start":
                if tag == "event":
                    depth_event += 1
                elif tag == "trace":
                    in_trace, case_attrs, events = True, {}, []
                continue
            if tag == "event":
                events.append({c.get("key"): c.get("value") for c in el if _local(c.tag) in _ATTRIBUTE_TAGS})
                depth_event -= 1
                el.clear()
            elif tag == "trace":
                yield case_attrs, events
                in_trace = False
                el.clear()
            elif in_trace and not depth_event and tag in _ATTRIBUTE_TAGS and el.get("key") is not None:
                case_attrs.setdefault(el.get("key"), el.get("value"))


def _number(text: str | None) -> float:
    """A finite number, or NaN (none) for anything else: "1e309" and "inf" are no value."""
    try:
        x = float(text) if text not in (None, "") else NAN
    except ValueError:
        return NAN
    return x if math.isfinite(x) else NAN


def _event_times(ev: dict[str, str], interval: bool, stats: dict) -> tuple[float, float, tuple | None] | None:
    """(aware, local, (aware, local) of its start or None) of one event; None, counted as
    events_without_time with an example, when a time it needs is missing or unreadable. An
    unreadable start_timestamp drops its one event (it used to abort the whole load)."""
    ts = ev.get("time:timestamp")
    start = next((ev[k] for k in START_KEYS if ev.get(k)), None) if interval else None
    try:
        if ts is None:
            raise ValueError
        aware, local = iso_times(ts)
    except ValueError:
        note_example(stats, "events_without_time", ts)
        return None
    try:
        return aware, local, (iso_times(start) if start is not None else None)
    except ValueError:
        note_example(stats, "events_without_time", start)
        return None


def parse_xes(path: str | Path, value_attribute: str = "AMOUNT_REQ", activity_prefix: str = "") -> ParsedLog:
    path = Path(path)
    stats: dict[str, int] = defaultdict(int)

    def cases() -> Iterator[tuple[str, float, list[Event]]]:
        n = 0
        for case_attrs, raw in _traces(path):
            n += 1
            stats["events"] += len(raw)
            case = case_attrs.get("concept:name") or f"case{n}"
            value = _number(case_attrs.get(value_attribute))
            events: list[Event] = []
            for seq, ev in enumerate(raw):
                act = ev.get("concept:name")
                if act is None:
                    stats["events_without_activity"] += 1
                    continue
                life = lifecycle(ev.get("lifecycle:transition"))
                if life is None:
                    stats["other_lifecycle_events"] += 1
                    continue
                times = _event_times(ev, life == "COMPLETE", stats)
                if times is None:
                    continue
                aware, local, start = times
                if start is not None:
                    events.append((aware, seq, act, "INTERVAL", ev.get("org:resource"), local, *start, NAN, NAN))
                else:
                    events.append((aware, seq, act, life, ev.get("org:resource"), local, NAN, NAN, NAN, NAN))
            yield case, (0.0 if math.isnan(value) else value), events

    parsed = touches_from_cases(cases(), activity_prefix)
    parsed.stats.update({k: v for k, v in stats.items()})
    return parsed
