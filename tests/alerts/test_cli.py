"""CLI end to end: two processes (serve + publish/subscribe) on the in-memory default and on Tansu; subscribe's
--count/--timeout, archive carry-over and --fresh, pointing's consistency warning."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import free_port
from helpers import recent

CLI = [sys.executable, "-m", "cevns.cli", "alerts"]


def _run(args, env, timeout=30):
    p = subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _serve(env, kr, archive, *extra):
    srv = subprocess.Popen(CLI + ["serve", "--keyring", str(kr), "--archive", str(archive), "--duration", "60",
                                  *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    if line.startswith("--fresh"):
        assert "moved to" in line
        line = srv.stdout.readline()
    assert "cevns alerts server" in line, srv.stderr.read() if srv.poll() is not None else line
    assert f"archive {archive}" in line
    return srv, line


def _stop(srv) -> tuple[str, float]:
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    try:
        out, err = srv.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        srv.kill()
        out, err = srv.communicate()
    return out, time.monotonic() - t0


def _two_terminal(broker, keyfiles, tmp_path):
    kr, creds = keyfiles
    env = dict(os.environ, CEVNS_ALERTS_BROKER=broker,
               CEVNS_ALERTS_LOOPBACK_TOKEN=str(tmp_path / "loopback.token"))
    archive = tmp_path / "a.sqlite"
    t = recent(0.5)
    t1, t2 = t.isoformat(), t.add_ns(4_500_000_000).isoformat()
    srv, _ = _serve(env, kr, archive)
    try:
        out = _run(["test-connection", "--credentials", str(creds["XENONnT"]), "--timeout", "20"], env)
        assert json.loads(out)["connection"] == "ok"
        u1 = json.loads(_run(["publish", "--credentials", str(creds["XENONnT"]), "--neutrino-time", t1], env))["uuid"]
        _run(["publish", "--credentials", str(creds["DS-20K"]), "--neutrino-time", t2, "--p-val", "0.01"], env)
        _run(["heartbeat", "--credentials", str(creds["JUNO"])], env)
        sub = ["subscribe", "--alert-key", str(creds["JUNO"]), "--from-beginning"]
        got = _run(sub + ["--count", "1", "--timeout", "20"], env)
        alert = json.loads(got.splitlines()[0])
        assert alert["state"] == "NEW" and alert["detectors"] == ["XENONnT", "DS-20K"] and u1 in alert["uuids"]
        _run(["retract", "--credentials", str(creds["XENONnT"]), "--uuid", u1, "--reason", "noise"], env)
        got = _run(sub + ["--count", "2", "--timeout", "20"], env)
        assert [json.loads(x)["state"] for x in got.splitlines()] == ["NEW", "RETRACTION"]
        got = _run(sub + ["--count", "1", "--timeout", "20"], env)  # exact: one line although two are there
        assert len(got.splitlines()) == 1
        p = subprocess.run(CLI + sub + ["--count", "3", "--timeout", "2"], env=env, capture_output=True, text=True,
                           timeout=30)  # only two exist: non-zero exit, said on stderr
        assert p.returncode == 1 and len(p.stdout.splitlines()) == 2 and "2 of 3" in p.stderr
        # bad credentials are a clear error, exit code 2
        bad = subprocess.run(CLI + ["publish", "--credentials", str(tmp_path / "nope.json"),
                                    "--neutrino-time", t1], env=env, capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and "credentials" in bad.stderr
        # an implausible neutrino time: the CLI refuses it before sending (exit 2, one line) ...
        fut = subprocess.run(CLI + ["publish", "--credentials", str(creds["JUNO"]), "--neutrino-time",
                                    "9999-01-01T00:00:00Z"], env=env, capture_output=True, text=True, timeout=30)
        assert fut.returncode == 2 and "in the future" in fut.stderr and len(fut.stderr.strip().splitlines()) == 1
        # ... and a message file that carries one is refused by the server (not an alert)
        msg = tmp_path / "future.json"
        msg.write_text(json.dumps({"tier": "CoincidenceTier", "detector_name": "JUNO",
                                   "neutrino_time_utc": "9999-01-01T00:00:00Z"}))
        _run(["publish", "--credentials", str(creds["JUNO"]), "--file", str(msg)], env)
    finally:
        out, dt = _stop(srv)
    stopped = json.loads(out.strip().splitlines()[-1])["server_stopped"]
    assert dt < 10, f"serve took {dt:.1f} s to stop after SIGTERM"
    assert stopped["accepted"] == 5 and stopped["rejected"] == 1
    assert stopped["online_detectors"] == ["JUNO"]
    # a second session on the same archive says so; --fresh moves it aside
    srv, _ = _serve(env, kr, archive)
    carried = srv.stdout.readline()
    _stop(srv)
    assert "carries over an earlier session" in carried and "--fresh" in carried
    srv, _ = _serve(env, kr, archive, "--fresh")
    _stop(srv)
    assert list(tmp_path.glob("a.sqlite.*.bak"))


def test_two_terminals_in_memory_default(keyfiles, tmp_path):
    _two_terminal(f"memory://127.0.0.1:{free_port()}", keyfiles, tmp_path)


def test_two_terminals_tansu(tansu, keyfiles, tmp_path):
    tansu.create_topic("snews-observations")
    tansu.create_topic("snews-alerts")
    _two_terminal(tansu.url, keyfiles, tmp_path)


def test_subscribe_unreachable_broker_times_out_cleanly(keyfiles, tmp_path):
    _, creds = keyfiles
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    p = subprocess.run(CLI + ["subscribe", "--broker", f"kafka://127.0.0.1:{port}", "--alert-key",
                              str(creds["JUNO"]), "--timeout", "3"], capture_output=True, text=True, timeout=60)
    dt = time.monotonic() - t0
    assert p.returncode != 0 and dt < 15, (p.returncode, dt)
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0] and p.stdout == "", p.stderr
    p = subprocess.run(CLI + ["subscribe", "--broker", f"memory://127.0.0.1:{port}", "--alert-key",
                              str(creds["JUNO"]), "--timeout", "3"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, CEVNS_ALERTS_LOOPBACK_TOKEN=str(tmp_path / "none")))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_pointing_warns_on_impossible_times(tmp_path):
    """0.5 s between Super-K and IceCube (~40 ms of light travel at most): a loud warning, consistent false."""
    f = tmp_path / "times.json"
    f.write_text(json.dumps({"Super-K": "2030-01-01T00:00:00Z", "IceCube": "2030-01-01T00:00:00.5Z",
                             "JUNO": "2030-01-01T00:00:00.01Z"}))
    p = subprocess.run(CLI + ["pointing", str(f), "--grid", "3000"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert out["consistent"] is False and out["chi2_p_value"] < 1e-3 and "inconsistent" in out["warning"]
    assert len(p.stderr.strip().splitlines()) == 1 and "warning" in p.stderr
    from cevns.alerts.pointing import predicted_times, radec_to_direction, site
    from cevns.alerts.timeutil import UTCTime, NS
    t0 = UTCTime.parse("2030-03-01T04:00:00Z")
    tt = predicted_times(["Super-K", "IceCube", "JUNO"], radec_to_direction(10.0, 20.0), t0)
    f.write_text(json.dumps({d: UTCTime(v + int(round(site(d).bias_s * NS))).isoformat() for d, v in tt.items()}))
    p = subprocess.run(CLI + ["pointing", str(f), "--grid", "3000"], capture_output=True, text=True, timeout=60)
    assert json.loads(p.stdout)["consistent"] is True and p.stderr == ""


def test_cli_bad_arguments(tmp_path):
    p = subprocess.run(CLI + ["replay", str(tmp_path / "missing.json")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "cannot read" in p.stderr
    p = subprocess.run(CLI + ["subscribe", "--broker", "http://x:1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "allowed" in p.stderr
    p = subprocess.run(CLI + ["serve", "--broker", "memory://10.0.0.1:9099", "--keyring", str(tmp_path / "k")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2


@pytest.mark.parametrize("det", ["Nope"])
def test_keygen_unknown_detector(det, tmp_path):
    p = subprocess.run(CLI + ["keygen", det, "--keyring", str(tmp_path / "k.json"), "--credentials-out",
                              str(tmp_path / "c.json")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "unknown detector" in p.stderr and "XENONnT" in p.stderr
