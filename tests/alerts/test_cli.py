"""CLI end to end: two processes (serve + publish/subscribe) on the in-memory default and on Tansu."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import free_port

CLI = [sys.executable, "-m", "cevns.cli", "alerts"]


def _run(args, env, timeout=30):
    p = subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _two_terminal(broker, keyfiles, tmp_path):
    kr, creds = keyfiles
    env = dict(os.environ, CEVNS_ALERTS_BROKER=broker)
    srv = subprocess.Popen(CLI + ["serve", "--keyring", str(kr), "--archive", str(tmp_path / "a.sqlite"),
                                  "--duration", "40"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        line = srv.stdout.readline()
        assert "cevns alerts server" in line, srv.stderr.read() if srv.poll() is not None else line
        out = _run(["test-connection", "--credentials", str(creds["XENONnT"]), "--timeout", "20"], env)
        assert json.loads(out)["connection"] == "ok"
        u1 = json.loads(_run(["publish", "--credentials", str(creds["XENONnT"]),
                              "--neutrino-time", "2030-01-01T12:00:00Z"], env))["uuid"]
        _run(["publish", "--credentials", str(creds["DS-20K"]), "--neutrino-time", "2030-01-01T12:00:04.5Z",
              "--p-val", "0.01"], env)
        _run(["heartbeat", "--credentials", str(creds["JUNO"])], env)
        got = _run(["subscribe", "--from-beginning", "--count", "1", "--timeout", "20"], env)
        alert = json.loads(got.splitlines()[0])
        assert alert["state"] == "NEW" and alert["detectors"] == ["XENONnT", "DS-20K"] and u1 in alert["uuids"]
        _run(["retract", "--credentials", str(creds["XENONnT"]), "--uuid", u1, "--reason", "noise"], env)
        got = _run(["subscribe", "--from-beginning", "--count", "2", "--timeout", "20"], env)
        states = [json.loads(x)["state"] for x in got.splitlines()]
        assert states == ["NEW", "RETRACTION"]
        # bad credentials are a clear error, exit code 2
        bad = subprocess.run(CLI + ["publish", "--credentials", str(tmp_path / "nope.json"),
                                    "--neutrino-time", "2030-01-01T12:00:00Z"], env=env, capture_output=True,
                             text=True, timeout=30)
        assert bad.returncode == 2 and "credentials" in bad.stderr
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            out, err = srv.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            out, err = srv.communicate()
    stopped = json.loads(out.strip().splitlines()[-1])["server_stopped"]
    assert stopped["accepted"] == 5 and stopped["rejected"] == 0
    assert stopped["online_detectors"] == ["JUNO"]


def test_two_terminals_in_memory_default(keyfiles, tmp_path):
    _two_terminal(f"memory://127.0.0.1:{free_port()}", keyfiles, tmp_path)


def test_two_terminals_tansu(tansu, keyfiles, tmp_path):
    tansu.create_topic("snews-observations")
    tansu.create_topic("snews-alerts")
    _two_terminal(tansu.url, keyfiles, tmp_path)


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
