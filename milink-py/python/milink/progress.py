"""Progress shown while a link works: ``on_progress=milink.progress.bar()``.

A ``tqdm.auto`` bar when tqdm is installed (a widget that updates in place in a notebook, a bar
in a terminal), and plain lines otherwise. The bar follows seeding (percent of the databases
being seeded) and shows the link's state as its description; the lines say the same, once each
time something changes.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Optional, TextIO

__all__ = ["bar"]

_Event = Dict[str, Any]


def _kind(event: _Event) -> str:
    return next((k for k in event if k != "at"), "")


class _Lines:
    """Plain lines on a stream, one per change."""

    def __init__(self, stream: TextIO, desc: str) -> None:
        self._stream = stream
        self._desc = desc
        self._last: Optional[str] = None

    def show(self, state: str, percent: Optional[int]) -> None:
        line = f"{self._desc}: {state}" + (f" {percent}%" if percent is not None else "")
        if line != self._last:
            print(line, file=self._stream, flush=True)
            self._last = line



class _Tqdm:
    """A tqdm.auto bar from 0 to 100 (seeding), its description the state."""

    def __init__(self, tqdm: Any, stream: Optional[TextIO], desc: str) -> None:
        self._desc = desc
        self.bar = tqdm(total=100, desc=desc, unit="%", file=stream, leave=True)

    def show(self, state: str, percent: Optional[int]) -> None:
        self.bar.set_description(f"{self._desc}: {state}", refresh=False)
        if percent is not None and percent > self.bar.n:
            self.bar.update(percent - self.bar.n)
        else:
            self.bar.refresh()


def bar(desc: str = "link", stream: Optional[TextIO] = None, plain: bool = False) -> Callable[[_Event], None]:
    """An ``on_progress`` callback that shows the link's state and seeding.

    ``tqdm.auto`` is used when it is installed and ``plain`` is false; otherwise one line is
    printed to ``stream`` (standard error by default) each time the state or the seeding percent
    changes. Seeding done, the bar stands at 100% with the state as its description.
    """
    factory: Any = None
    if not plain:
        try:
            import tqdm.auto as auto  # type: ignore[import-untyped,unused-ignore]

            factory = auto.tqdm
        except ImportError:
            factory = None
    display: Any = (
        _Tqdm(factory, stream, desc) if factory is not None else _Lines(stream or sys.stderr, desc)
    )
    state = "Draft"
    percents: Dict[str, int] = {}

    def on_progress(event: _Event) -> None:
        nonlocal state
        kind = _kind(event)
        if kind == "StateChanged":
            state = str(event["StateChanged"]["to"])
            if state != "Seeding":
                percents.clear()
        elif kind == "Progress" and "Seeding" in event["Progress"]:
            seeding = event["Progress"]["Seeding"]
            percents[str(seeding["database"])] = int(seeding["percent"])
        else:
            return
        percent = min(percents.values()) if percents else None
        if state == "Replicating" and percent is None:
            percent = 100
        display.show(state, percent)

    return on_progress
