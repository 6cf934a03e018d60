"""Reproductions of published analyses: re-run on the shipped releases, ours beside the published numbers.

A reproduction is a function returning a :class:`Reproduction`: a table (ours beside published, the published
column read from the experiment spec's ``published`` block), the JSON payload, and a plotting callback. They live
apart from the experiments: an experiment is a spec; a reproduction is an analysis of one or more of them.
"""
from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cevns.errors import UnknownNameError

__all__ = ["Row", "Reproduction", "register", "get_reproduction", "list_reproductions", "REPRODUCTIONS"]


@dataclass
class Row:
    quantity: str
    ours: str
    published: str
    note: str = ""


@dataclass
class Reproduction:
    name: str
    title: str
    rows: list[Row]
    results: dict  # JSON payload: floats under the contract keys, plus anything else useful
    plot: Callable[[Path], list[Path]] | None = None
    notes: list[str] = field(default_factory=list)
    #: reproductions this one ran on the way (e.g. the single-experiment ones of a combination), by name
    parts: dict = field(default_factory=dict)
    #: the analysis objects behind the table (fit results, profiles), for tests and notebooks; not written to JSON
    details: dict = field(default_factory=dict)

    def table(self) -> str:
        w0 = max(len(r.quantity) for r in self.rows)
        w1 = max(len(r.ours) for r in self.rows + [Row("", "ours", "")])
        w2 = max(len(r.published) for r in self.rows + [Row("", "", "published")])
        lines = [self.title, "", f"{'quantity':<{w0}}  {'ours':>{w1}}  {'published':>{w2}}  note",
                 "-" * (w0 + w1 + w2 + 10)]
        lines += [f"{r.quantity:<{w0}}  {r.ours:>{w1}}  {r.published:>{w2}}  {r.note}" for r in self.rows]
        if self.notes:
            lines += [""] + [f"* {n}" for n in self.notes]
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if hasattr(v, "item"):
                return clean(v.item()) if getattr(v, "ndim", 0) == 0 else clean(v.tolist())
            return v

        from cevns.io import write_text_atomic

        write_text_atomic(path, json.dumps(clean(self.results), indent=2))


#: name -> "module:function" (lazy import, so a missing optional part does not break the CLI)
REPRODUCTIONS: dict[str, str] = {
    "coherent-combined": "cevns.reproductions.coherent_combined:reproduce",
    "coherent-csi-2017": "cevns.reproductions.coherent_csi_2017:reproduce",
    "coherent-csi-2021": "cevns.reproductions.coherent_csi_2021:reproduce",
    "coherent-ar-2020": "cevns.reproductions.coherent_ar_2020:reproduce",
    "xenonnt-b8": "cevns.reproductions.xenonnt_b8:reproduce",
}


def register(name: str, target: str) -> None:
    REPRODUCTIONS[name] = target


def list_reproductions() -> list[str]:
    return sorted(REPRODUCTIONS)


def get_reproduction(name: str) -> Callable[..., Reproduction]:
    if name not in REPRODUCTIONS:
        raise UnknownNameError("reproduction", name, REPRODUCTIONS)
    mod, fn = REPRODUCTIONS[name].split(":")
    return getattr(importlib.import_module(mod), fn)
