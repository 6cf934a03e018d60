"""Build ``src/cevns/data/xenonnt_cevns_2024`` from the XENONnT CEvNS data release (HDF5 templates → .npz).

Run once (needs h5py, not a dependency of the package):  python docs/make_xenonnt_release.py [RELEASE_DIR]
(default RELEASE_DIR: ../shared/data/xenonnt_cevns_data_release). Values are copied bit for bit (float64); only the
slices of the 7×7 light/charge-yield grid that the package's one-at-a-time morphing uses are kept (tly at tqy = 0,
tqy at tly = 0). The script also reports how much the additive (one-at-a-time) interpolation differs from the full
grid at the grid corners for an ⁸B CEvNS spectrum, the number quoted in the folder's SOURCE.md.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

GRID = np.arange(-3.0, 4.0)
MONO_E = np.round(np.arange(0.5, 5.0001, 0.1), 3)


def main(release: Path, out: Path) -> None:
    import h5py

    out.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "binning"):
        (out / sub).mkdir(exist_ok=True)
        for sr in ("sr0", "sr1", "sr2"):
            ext = "csv" if sub == "data" else "yaml"
            shutil.copyfile(release / sub / f"{sr}.{ext}", out / sub / f"{sr}.{ext}")
    (out / "limits").mkdir(exist_ok=True)
    shutil.copyfile(release / "limits/sr2/xenonnt_2026_wimp_si.csv", out / "limits/xenonnt_2026_wimp_si.csv")
    shutil.copyfile(release / "LICENSE", out / "LICENSE")

    def read(path):
        with h5py.File(path, "r") as f:
            edges = [f[f"bins/{i}"][()] for i in range(4)]
            names = [f[f"bins/{i}"].attrs["name"] for i in range(4)]
            return edges, names, f["templates/template"][()]

    report = []
    for sr in ("sr0", "sr1", "sr2"):
        t = release / "templates" / sr
        edges, names, ac = read(t / "ac" / f"template_XENONnT_{sr}_ac_cevns.h5")
        _, _, er = read(t / "er" / f"template_XENONnT_{sr}_er_cevns.h5")

        def grid(kind, extra=""):
            full = np.empty((7, 7) + ac.shape)
            for i, a in enumerate(GRID):
                for j, b in enumerate(GRID):
                    e2, _, v = read(t / kind / f"template_XENONnT_{sr}_{extra}cevns_tly_{a:.1f}_tqy_{b:.1f}.h5")
                    assert all(np.array_equal(x, y) for x, y in zip(e2, edges)), "bin edges differ between files"
                    full[i, j] = v
            return full

        rg = grid("rg", "rg_")
        mono = np.stack([grid("mono", f"mono_{E:.3f}_") for E in MONO_E], axis=2)  # (7, 7, 46, ...)
        np.savez_compressed(out / f"templates_{sr}.npz", edges_0=edges[0], edges_1=edges[1], edges_2=edges[2],
                            edges_3=edges[3], axis_names=np.array(names), ac=ac, er=er, yield_grid=GRID,
                            rg_tly=rg[:, 3], rg_tqy=rg[3, :], mono_E_keV=MONO_E, mono_tly=mono[:, 3],
                            mono_tqy=mono[3, :])
        # additive vs full grid for an 8B CEvNS spectrum (weights of the mono energies)
        try:
            from cevns.experiments.sections.efficiency_templates import hat_weights_8b

            wE = hat_weights_8b(MONO_E)
            fold = np.einsum("ijeabcd,e->ijabcd", mono, wE)
            add = fold[:, 3][:, None] + fold[3, :][None, :] - fold[3, 3][None, None]
            rel = np.abs(add.sum(axis=(2, 3, 4, 5)) / fold.sum(axis=(2, 3, 4, 5)) - 1)
            report.append(f"{sr}: total 8B signal, additive vs full grid: max |rel. diff| at ±1σ corners "
                          f"{rel[2:5, 2:5].max():.3%}, at ±3σ corners {rel.max():.3%}")
        except ImportError:  # pragma: no cover
            pass
    for line in report:
        print(line)
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(hashlib.md5(p.read_bytes()).hexdigest(), p.relative_to(out))


if __name__ == "__main__":
    rel = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/xenonnt_cevns_data_release"
    main(rel, Path(__file__).resolve().parents[1] / "src/cevns/data/xenonnt_cevns_2024")
