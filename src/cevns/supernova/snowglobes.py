"""SNOwGLoBES tables (cross sections, smearing matrices, efficiencies, channels, detector configurations) and the
response matrices built from them.

Reader conventions (SNOwGLoBES manual v1.3 §§ 6–9; the same reading as snewpy's ``SnowglobesData``):
* ``xscns/xs_<channel>.dat``: columns log10(E_ν/GeV), then σ/E_ν [10⁻³⁸ cm²/GeV] for ν_e ν_μ ν_τ ν̄_e ν̄_μ ν̄_τ,
  per reference target; linear interpolation in log10 E, zero outside the table;
* the channel files without a binning line use the default binning: 200 true and 200 detected bins with centres
  0.5 … 100 MeV (0.5 MeV wide);
* ``smear/<det>/smear_<channel>_<det>.dat``: one line per detected bin ``{k_min, k_max, v_kmin … v_kmax}`` over
  true bins; ``effic/<det>/effic_<channel>_<det>.dat``: one efficiency per detected bin (absent: 1, no smearing:
  the identity, as snewpy does);
* number of reference targets = detector mass [Da] × target normalisation (``detector_configurations.dat``) ×
  channel weight (``channels_<material>.dat``).

The tables ship gzipped, values unchanged, in ``cevns/data/snowglobes_sn`` (see its SOURCE.md); ``base`` may point
at another copy, e.g. the PyPI package ``snowglobes_data`` (:func:`snowglobes_data_dir`).
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from cevns.constants import AVOGADRO
from cevns.errors import DataError, UnknownNameError

__all__ = ["SnowglobesTables", "shipped_tables", "snowglobes_data_dir", "FLAVOUR_COLUMN", "TRUE_CENTRES_MeV",
           "TRUE_EDGES_MeV", "DET_CENTRES_MeV", "energy_nodes", "ChannelInfo", "DALTON_PER_KT"]

#: one kilotonne in daltons (1e9 g × N_A per g)
DALTON_PER_KT = 1e9 * AVOGADRO
#: SNOwGLoBES default binning: 200 bins with centres 0.5 … 100 MeV
TRUE_CENTRES_MeV = np.linspace(0.5, 100.0, 200)
TRUE_EDGES_MeV = np.concatenate([TRUE_CENTRES_MeV - 0.25, [TRUE_CENTRES_MeV[-1] + 0.25]])
DET_CENTRES_MeV = TRUE_CENTRES_MeV.copy()
#: (parity, flavour letter) of a channel line → the species whose fluence it sees
FLAVOUR_COLUMN = {("+", "e"): "nue", ("+", "m"): "numu", ("+", "t"): "nutau",
                  ("-", "e"): "nuebar", ("-", "m"): "numubar", ("-", "t"): "nutaubar"}
_XS_COLUMN = {"nue": 1, "numu": 2, "nutau": 3, "nuebar": 4, "numubar": 5, "nutaubar": 6}


def energy_nodes(n_per_bin: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes E [MeV], weights [MeV] and true-bin index of each node, ``n_per_bin`` per true bin."""
    x, w = np.polynomial.legendre.leggauss(n_per_bin)
    a, b = TRUE_EDGES_MeV[:-1, None], TRUE_EDGES_MeV[1:, None]
    E = (0.5 * (a + b) + 0.5 * (b - a) * x).ravel()
    W = (0.5 * (b - a) * w).ravel()
    idx = np.repeat(np.arange(TRUE_CENTRES_MeV.size), n_per_bin)
    return E, W, idx


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    species: str
    weight: float


def snowglobes_data_dir() -> Path:
    """The table folder of the installed PyPI package ``snowglobes_data`` (DataError if it is not installed)."""
    try:
        import snowglobes_data
    except ImportError as exc:
        raise DataError("the PyPI package snowglobes_data is not installed (pip install snowglobes_data)") from exc
    return Path(snowglobes_data.__file__).parent


class SnowglobesTables:
    """Reader of one SNOwGLoBES table tree (plain or ``.gz`` files)."""

    def __init__(self, base=None):
        self.base = resources.files("cevns.data").joinpath("snowglobes_sn") if base is None else Path(base)

    def text(self, rel: str) -> str:
        p = self.base.joinpath(rel)
        if p.is_file():
            return p.read_text()
        gz = self.base.joinpath(rel + ".gz")
        if gz.is_file():
            return gzip.decompress(gz.read_bytes()).decode()
        raise DataError(f"SNOwGLoBES table {rel} not found under {self.base}")

    def exists(self, rel: str) -> bool:
        return self.base.joinpath(rel).is_file() or self.base.joinpath(rel + ".gz").is_file()

    def detector_configuration(self, name: str) -> tuple[float, float]:
        """(mass [kt], target normalisation) of a SNOwGLoBES configuration."""
        conf = {}
        for line in self.text("detector_configurations.dat").splitlines():
            tok = line.split()
            if len(tok) >= 3 and not tok[0].startswith("#"):
                conf[tok[0]] = (float(tok[1]), float(tok[2]))
        if name not in conf:
            raise UnknownNameError("SNOwGLoBES detector configuration", name, conf)
        return conf[name]

    def channels(self, material: str) -> list[ChannelInfo]:
        out = []
        for line in self.text(f"channels/channels_{material}.dat").splitlines():
            tok = line.split()
            if len(tok) < 5 or tok[0].startswith("%"):
                continue
            out.append(ChannelInfo(tok[0], FLAVOUR_COLUMN[(tok[2], tok[3])], float(tok[4])))
        if not out:
            raise DataError(f"no channels read from channels_{material}.dat")
        return out

    def cross_section_cm2(self, channel: str, species: str, E_MeV) -> np.ndarray:
        """σ(E) [cm²] per reference target: table σ/E [1e-38 cm²/GeV] interpolated in log10 E, times E."""
        rows = [r.split() for r in self.text(f"xscns/xs_{channel}.dat").splitlines()]
        tab = np.array([[float(x) for x in r] for r in rows if len(r) == 7 and not r[0].startswith("#")])
        if tab.shape[0] < 10:
            raise DataError(f"xs_{channel}.dat: fewer than 10 rows")
        E_GeV = np.asarray(E_MeV, float) * 1e-3
        y = np.interp(np.log10(E_GeV), tab[:, 0], tab[:, _XS_COLUMN[species]], left=0.0, right=0.0)
        return y * E_GeV * 1e-38

    @staticmethod
    def _braces(line: str) -> np.ndarray:
        return np.array([float(x) for x in line.split("{")[-1].split("}")[0].split(",")])

    def smearing(self, detector: str, channel: str, n: int = 200) -> np.ndarray | None:
        """S[detected bin, true bin] or None when the table has no file."""
        rel = f"smear/{detector}/smear_{channel}_{detector}.dat"
        if not self.exists(rel):
            return None
        rows = [ln for ln in self.text(rel).splitlines() if "{" in ln and "}" in ln and not ln.startswith("energy")]
        if len(rows) != n:
            raise DataError(f"{rel}: {len(rows)} detected-bin rows, expected {n}")
        S = np.zeros((n, n))
        for i, ln in enumerate(rows):
            el = self._braces(ln)
            k0, k1 = int(el[0] + 0.1), int(el[1] + 0.1)
            if k1 - k0 + 1 != el.size - 2:
                raise DataError(f"{rel}: row {i} has {el.size - 2} values for bins {k0}..{k1}")
            S[i, k0:k1 + 1] = el[2:]
        return S

    def efficiency(self, detector: str, channel: str, n: int = 200) -> np.ndarray | None:
        rel = f"effic/{detector}/effic_{channel}_{detector}.dat"
        if not self.exists(rel):
            return None
        line = next(ln for ln in self.text(rel).splitlines() if "{" in ln)
        e = self._braces(line)
        if e.size != n:
            raise DataError(f"{rel}: {e.size} efficiencies, expected {n}")
        return e


@lru_cache(maxsize=4)
def shipped_tables() -> SnowglobesTables:
    return SnowglobesTables()
