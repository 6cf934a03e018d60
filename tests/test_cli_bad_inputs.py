"""The installed ``cevns`` command driven through bad inputs, as a user (or a careless script) would give them.

Each case must end with a non-zero exit status, exactly one line on stderr that starts with ``cevns: error:`` and
names the problem, no traceback, and no output file left behind in the working directory (nothing is half-written:
outputs are checked before any work and written atomically). The cases run in parallel subprocesses once per session.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cevns.experiments.registry import load_spec

CSI17 = ["--experiment", "coherent-csi-2017"]
MU = ["--param", "mu_nu_e=0:40:11"]


def _cevns() -> list[str]:
    exe = shutil.which("cevns")
    return [exe] if exe else [sys.executable, "-m", "cevns"]


def _inverted_roi_spec(d: Path) -> str:
    spec = load_spec("coherent-csi-2017")
    spec["binning"]["roi"] = {"pe": [30, 6], "time_us": [0, 12]}
    p = d / "inverted_roi.json"
    p.write_text(json.dumps(spec))
    return str(p)


def _decreasing_edges_spec(d: Path) -> str:
    spec = load_spec("coherent-csi-2017")
    spec["binning"]["axes"][0]["edges"] = [0, 10, 5, 50]
    p = d / "decreasing_edges.json"
    p.write_text(json.dumps(spec))
    return str(p)


# (id, argv (with {tmp} for the case's working directory), a fragment the error line must contain)
CASES = [
    ("duplicate-experiment", ["scan", *CSI17, *CSI17, *MU], "more than once"),
    ("scanned-and-fixed", ["scan", *CSI17, "--param", "mu_nu_e=0:50:51", "--fix", "mu_nu_e=10"], "both scanned"),
    ("cl-zero", ["limit", *CSI17, *MU, "--cl", "0"], "--cl"),
    ("cl-above-100", ["limit", *CSI17, *MU, "--cl", "150"], "--cl"),
    ("cl-negative", ["limit", *CSI17, *MU, "--cl", "-0.5"], "--cl"),
    ("cl-not-a-number", ["limit", *CSI17, *MU, "--cl", "ninety"], "--cl"),
    ("no-effect-parameter", ["scan", "--experiment", "coherent-ar-2020", "--param", "rn_Cs=4:6:11"],
     "does not change the prediction"),
    ("json-unwritable-dir", ["scan", *CSI17, *MU, "--json", "/proc/cevns_test/out.json"], "--json"),
    ("json-is-a-directory", ["scan", *CSI17, *MU, "--json", "{tmp}"], "is a directory"),
    ("plot-is-a-directory", ["scan", *CSI17, *MU, "--plot", "{tmp}/"], "is a directory"),
    ("plot-unknown-format", ["scan", *CSI17, *MU, "--plot", "{tmp}/out.xyz"], "unknown plot format"),
    ("plot-unwritable", ["scan", *CSI17, *MU, "--plot", "/proc/cevns_test/p.png"], "--plot"),
    ("bogus-scheduler", ["scan", *CSI17, *MU, "--scheduler", "bogus"], "scheduler"),
    ("unreachable-scheduler", ["scan", *CSI17, *MU, "--scheduler", "tcp://127.0.0.1:9"], "cannot reach"),
    ("huge-grid", ["scan", *CSI17, "--param", "mu_nu_e=0:50:4001", "--param", "g_zprime=0:1:4001"], "--force"),
    ("absurd-grid", ["scan", *CSI17, "--param", "mu_nu_e=0:50:100000", "--param", "g_zprime=0:1:100000"],
     "--force"),
    ("unknown-parameter", ["scan", *CSI17, "--param", "eps_xx_uV=0:1:3"], "unknown physics parameter"),
    ("parameter-outside-range", ["scan", *CSI17, "--param", "sin2_theta_w=0:2:3"], "outside its allowed range"),
    ("axis-reversed", ["scan", *CSI17, "--param", "sin2_theta_w=0.3:0.1:3"], "LO < HI"),
    ("axis-one-point", ["scan", *CSI17, "--param", "mu_nu_e=0:5:1"], "2 <= N"),
    ("axis-infinite", ["scan", *CSI17, "--param", "mu_nu_e=0:inf:11"], "finite"),
    ("axis-no-equals", ["scan", *CSI17, "--param", "mu_nu_e"], "NAME=LO:HI:N"),
    ("fix-unknown", ["scan", *CSI17, *MU, "--fix", "bogus=1"], "unknown physics parameter"),
    ("fix-nan", ["scan", *CSI17, *MU, "--fix", "g_zprime=nan"], "finite"),
    ("unknown-experiment", ["scan", "--experiment", "nope", *MU], "unknown experiment"),
    ("no-experiment", ["scan", *MU], "at least one --experiment"),
    ("missing-spec-file", ["scan", "--experiment", "{tmp}/missing.json", *MU], "does not exist"),
    ("invalid-json-spec", ["scan", "--experiment", "{tmp}/bad.json", *MU], "not valid JSON"),
    ("inverted-roi-spec", ["scan", "--experiment", "{inverted_roi}", *MU], "lo < hi"),
    ("decreasing-bin-edges", ["scan", "--experiment", "{decreasing_edges}", *MU], "strictly increasing"),
    ("2d-limit-without-mass", ["limit", *CSI17, *MU, "--param", "rn_CsI=4:6:3"], "mass axis"),
    ("reproduce-unknown", ["reproduce", "nope"], "unknown reproduction"),
    ("reproduce-plots-is-a-file", ["reproduce", "coherent-csi-2017", "--plots", "{tmp}/bad.json"], "is a file"),
    ("reproduce-json-directory", ["reproduce", "coherent-csi-2017", "--json", "{tmp}"], "is a directory"),
    ("fit-unknown-free", ["fit", *CSI17, "--free", "eps_xx"], "unknown physics parameter"),
    ("fit-value-not-a-number", ["fit", *CSI17, "--param", "mu_nu_e=abc"], "must be a number"),
    ("fit-duplicate-experiment", ["fit", *CSI17, *CSI17], "twice"),
    ("fit-json-unwritable", ["fit", *CSI17, "--json", "/proc/cevns_test/f.json"], "--json"),
    ("pointing-missing-file", ["alerts", "pointing", "{tmp}/missing.json"], "cannot read"),
    ("supernova-negative-distance", ["supernova", "rates", "--distance-kpc", "-1"], "distance"),
    ("supernova-unknown-detector", ["supernova", "rates", "--detector", "nope"], "unknown supernova detector"),
]


def _run(case, root: Path):
    cid, argv, _ = case
    d = root / cid
    d.mkdir()
    (d / "bad.json").write_text("{bad json")
    joined = " ".join(argv)
    subs = {"tmp": str(d),
            "inverted_roi": _inverted_roi_spec(d) if "{inverted_roi}" in joined else "",
            "decreasing_edges": _decreasing_edges_spec(d) if "{decreasing_edges}" in joined else ""}
    before = sorted(p.name for p in d.iterdir())
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    p = subprocess.run(_cevns() + [a.format(**subs) for a in argv], cwd=d, capture_output=True, text=True,
                       timeout=300, env=env)
    after = sorted(p.name for p in d.iterdir())
    return p, before, after


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: _run(c, root), CASES))
    return {c[0]: r for c, r in zip(CASES, results)}


def test_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("cid,argv,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(outcomes, cid, argv, fragment):
    p, before, after = outcomes[cid]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0, f"exit 0 for a bad input; stdout: {p.stdout[-500:]}"
    assert "Traceback" not in p.stderr
    assert len(lines) == 1 and lines[0].startswith("cevns: error:"), p.stderr[-2000:]
    assert fragment in lines[0], lines[0]
    assert after == before, f"files left behind: {sorted(set(after) - set(before))}"


def test_limit_without_crossing_keeps_the_scan(tmp_path):
    """`limit` whose Δχ² never reaches the threshold: exit 1, one error line, and the JSON says there is no limit
    (instead of the old 'never reaches nan' after a lost scan)."""
    js = tmp_path / "l.json"
    p = subprocess.run(_cevns() + ["limit", *CSI17, "--param", "mu_nu_e=0:5:11", "--cl", "90%", "--json", str(js),
                                   "--no-progress"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("cevns: error:")]
    assert len(err) == 1 and "no upper limit" in err[0] and "2.706" in err[0]
    assert "read --cl 90% as a percentage: 90 % CL" in p.stdout
    data = json.loads(js.read_text())
    assert data["upper_limit"] is None and data["cl"] == pytest.approx(0.9)
    assert any("no upper limit" in w for w in data["warnings"])


def test_every_option_has_help():
    """Every option and positional argument of every command carries a help text."""
    import argparse

    from cevns.cli import build_parser

    missing = []

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, path + [name])
            elif not isinstance(a, argparse._HelpAction) and not a.help:
                missing.append(" ".join(path + [a.option_strings[0] if a.option_strings else a.dest]))

    walk(build_parser(), ["cevns"])
    assert not missing, missing


def test_version_and_module_entry_point():
    from cevns import __version__

    p = subprocess.run([sys.executable, "-m", "cevns", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"cevns {__version__}"
