"""Section ``nuisances``: every non-physics parameter of an experiment, declared once, by modifier type.

Types (each implemented once in :mod:`cevns.model.samples`):

* ``normsys``    multiplicative normalisation ν with a Gaussian constraint (1, σ); σ a number, ``"from_prediction"``
  (the sample's prediction_sigma / prediction), ``"prediction_remainder"`` (the part of the sample's relative
  prediction uncertainty not carried by its other normsys modifiers, in quadrature) or
  {"poisson_count": dataset, "region": "all" | "roi"} (1/√N of an auxiliary measurement);
* ``normfactor`` free multiplicative normalisation;
* ``histosys``   morphing between released ±1σ variants: ν in units of σ, grid {−1, 0, +1} (HistFactory code 0);
* ``response``   a detector or source response parameter (quenching, efficiency, pulse timing, a time shift) in its
  own unit: nominal value from the section that uses it, Gaussian constraint σ, a variant grid (``grid`` list,
  ``grid_sigmas`` list in units of σ around the nominal, or {"half_range", "step"} / {"start", "step", "n"}; the
  nominal is added to the grid when it is not on it).

``{"shared": true}`` takes the definition of ``cevns/experiments/shared_parameters.json`` (e.g. ``sns_flux_norm``),
so every experiment that shares a parameter carries the identical constraint and limits.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cevns.errors import ConfigError
from cevns.inference.likelihood import Parameter
from cevns.model.interpolation import VariantGrid

__all__ = ["NuisanceTable", "build_nuisances", "SHARED", "TYPES"]

TYPES = ("normsys", "normfactor", "histosys", "response")
SHARED: dict = json.loads((Path(__file__).resolve().parent.parent / "shared_parameters.json").read_text())


@dataclass
class NuisanceTable:
    """The declarations by name; :meth:`parameter` turns one into a :class:`Parameter` (and a grid for morphing)."""

    exp_name: str
    decl: dict

    def type_of(self, name: str) -> str:
        return self.get(name)["type"]

    def get(self, name: str) -> dict:
        if name not in self.decl:
            raise ConfigError(f"spec {self.exp_name}: parameter {name!r} is used but not declared in 'nuisances' "
                              f"(declared: {sorted(self.decl)})")
        return self.decl[name]

    def sigma(self, name: str, context: dict | None = None) -> float:
        d = self.get(name)
        s = d.get("sigma")
        ctx = context or {}
        if isinstance(s, (int, float)):
            val = float(s)
        elif s == "from_prediction":
            val = ctx["prediction_sigma"] / ctx["prediction"]
        elif s == "prediction_remainder":
            rel = ctx["prediction_sigma"] / ctx["prediction"]
            others = ctx.get("other_sigmas", [])
            val = math.sqrt(max(rel * rel - sum(o * o for o in others), 0.0))
        elif isinstance(s, dict) and "poisson_count" in s:
            n = ctx["poisson_counts"][(s["poisson_count"], s.get("region", "all"))]
            if n <= 0:
                raise ConfigError(f"spec {self.exp_name}: {name}: dataset {s['poisson_count']!r} has no events")
            val = 1.0 / math.sqrt(n)
        elif s is None and d["type"] in ("histosys",):
            val = 1.0
        else:
            raise ConfigError(f"spec {self.exp_name}: {name}: cannot read sigma {s!r}")
        if not (math.isfinite(val) and val >= 0):
            raise ConfigError(f"spec {self.exp_name}: {name}: sigma must be finite and >= 0, got {val}")
        return val

    def grid(self, name: str, nominal: float, sigma: float) -> VariantGrid:
        d = self.get(name)
        t = d["type"]
        if t == "histosys":
            return VariantGrid([-1.0, 0.0, 1.0], 0.0)
        if t != "response":
            raise ConfigError(f"spec {self.exp_name}: {name} is a {t}, not a morphing parameter")
        if "grid" in d and isinstance(d["grid"], list):
            vals = np.asarray(d["grid"], float)
        elif "grid_sigmas" in d:
            vals = nominal + sigma * np.asarray(d["grid_sigmas"], float)
        elif isinstance(d.get("grid"), dict) and "half_range" in d["grid"]:
            h, st = float(d["grid"]["half_range"]), float(d["grid"]["step"])
            n = int(round(2 * h / st)) + 1
            vals = nominal - h + st * np.arange(n)
        elif isinstance(d.get("grid"), dict) and "n" in d["grid"]:
            g = d["grid"]
            vals = float(g["start"]) + float(g["step"]) * np.arange(int(g["n"]))
        else:
            raise ConfigError(f"spec {self.exp_name}: response parameter {name} needs a grid")
        if not np.any(np.isclose(vals, nominal, rtol=0, atol=1e-12 * max(1.0, abs(nominal)))):
            if not (vals[0] < nominal < vals[-1]):
                raise ConfigError(f"spec {self.exp_name}: {name}: nominal {nominal} outside its grid "
                                  f"[{vals[0]}, {vals[-1]}]")
            vals = np.sort(np.r_[vals, nominal])
        return VariantGrid(vals, nominal)

    def parameter(self, name: str, nominal: float | None = None, context: dict | None = None) -> tuple[Parameter, VariantGrid | None]:
        """(Parameter, grid or None) for declared parameter ``name``; ``nominal`` for response parameters."""
        d = self.get(name)
        t = d["type"]
        doc = d.get("doc", "")
        if t == "normfactor":
            lim = tuple(d.get("limits", (0.0, 5.0)))
            return Parameter(name, float(d.get("value", 1.0)), lim, None, float(d.get("step", 0.05)), "poi", doc), None
        if t == "normsys":
            s = self.sigma(name, context)
            lim = tuple(d.get("limits", (0.0, max(5.0, 1.0 + 6.0 * s))))
            return Parameter(name, 1.0, lim, (1.0, s) if s > 0 else None, float(d.get("step", max(0.5 * s, 0.005))),
                             "nuisance", doc), None
        if t == "histosys":
            lim = tuple(d.get("limits", (-4.0, 4.0)))
            return Parameter(name, 0.0, lim, (0.0, 1.0), 0.5, "nuisance", doc), self.grid(name, 0.0, 1.0)
        if t == "response":
            if nominal is None:
                nominal = float(d.get("nominal", 0.0))
            s = self.sigma(name, context)
            g = self.grid(name, nominal, s)
            lim = d.get("limits", "grid")
            lim = (float(g.values[0]), float(g.values[-1])) if lim == "grid" else tuple(float(x) for x in lim)
            if not lim[0] <= nominal <= lim[1]:
                raise ConfigError(f"spec {self.exp_name}: {name}: nominal {nominal} outside its limits {lim}")
            return Parameter(name, nominal, lim, (nominal, s) if s > 0 else None, float(d.get("step", 0.5 * s or 0.01)),
                             "nuisance", doc), g
        raise ConfigError(f"spec {self.exp_name}: parameter {name}: unknown type {t!r}; allowed: {TYPES}")


def build_nuisances(sec: dict, exp_name: str) -> NuisanceTable:
    decl = {}
    for name, d in sec.items():
        if d.get("shared"):
            if name not in SHARED:
                raise ConfigError(f"spec {exp_name}: {name!r} is marked shared but is not one of the shared "
                                  f"parameters {sorted(SHARED)}")
            extra = set(d) - {"shared", "note"}
            if extra:
                raise ConfigError(f"spec {exp_name}: shared parameter {name!r} is defined once in "
                                  f"shared_parameters.json; remove {sorted(extra)}")
            decl[name] = dict(SHARED[name])
        else:
            if d.get("type") not in TYPES:
                raise ConfigError(f"spec {exp_name}: parameter {name!r}: type {d.get('type')!r}; allowed: {TYPES}")
            if name in SHARED:
                raise ConfigError(f"spec {exp_name}: {name!r} is a shared parameter: declare it as {{\"shared\": true}}")
            decl[name] = dict(d)
    return NuisanceTable(exp_name, decl)


class ParamCollector:
    """The parameter vector of one model, filled as samples ask for their parameters (each name once)."""

    def __init__(self, table: NuisanceTable, context: dict | None = None):
        self.table = table
        self.context = dict(context or {})
        self.params: list[Parameter] = []
        self.index: dict[str, int] = {}
        self.grids: dict[str, VariantGrid] = {}

    def add_parameter(self, p: Parameter) -> int:
        if p.name in self.index:
            raise ConfigError(f"spec {self.table.exp_name}: parameter {p.name!r} defined twice")
        self.index[p.name] = len(self.params)
        self.params.append(p)
        return self.index[p.name]

    def add(self, name: str, nominal: float | None = None, context: dict | None = None) -> int:
        """Index of declared parameter ``name`` (added on first use)."""
        if name in self.index:
            return self.index[name]
        p, g = self.table.parameter(name, nominal, {**self.context, **(context or {})})
        if g is not None:
            self.grids[name] = g
        return self.add_parameter(p)

    def grid(self, name: str) -> VariantGrid:
        return self.grids[name]
