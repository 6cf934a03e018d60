"""Output files: checked before any work, written atomically (a result is never left half-written).

``check_output_file`` refuses a path that is a directory, whose parent cannot be created or written, or (for plots)
whose extension matplotlib cannot write; ``write_text_atomic`` writes to a temporary file beside the target and
renames it into place.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cevns.errors import ConfigError

__all__ = ["check_output_file", "check_output_dir", "check_plot_path", "check_cli_outputs", "write_text_atomic",
           "plot_formats"]


def _writable_dir(d: Path, what: str) -> None:
    probe = d
    while not probe.exists():  # the nearest existing ancestor must be a writable directory
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: directory {probe} is not writable")
    try:  # a real probe: permissions are not the whole story (read-only mounts, /proc, quotas, root's access())
        fd, tmp = tempfile.mkstemp(prefix=".cevns-probe.", dir=probe)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot write in directory {probe}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(tmp)


def check_output_file(path, what: str = "output file") -> Path:
    """A path a file can be written to: not a directory, in a creatable, writable directory."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise ConfigError(f"{what}: {p} is a directory; give a file name")
    if str(p).endswith(os.sep):
        raise ConfigError(f"{what}: {p} names a directory; give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{what}: {p} is not writable")
    _writable_dir(p.parent if str(p.parent) else Path("."), what)
    return p


def check_output_dir(path, what: str = "output directory") -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what}: {p} exists and is a file; give a directory")
    _writable_dir(p, what)
    return p


def plot_formats() -> list[str]:
    """File extensions matplotlib's Agg canvas can write."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_plot_path(path, what: str = "plot file") -> Path:
    p = check_output_file(path, what)
    ext = p.suffix.lower().lstrip(".")
    allowed = plot_formats()
    if ext not in allowed:
        raise ConfigError(f"{what}: {p}: unknown plot format {ext!r}; allowed: {', '.join(allowed)}")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_cli_outputs(args) -> None:
    """The output options of a command (``--json FILE``, ``--plot FILE``, ``--plots DIR``), checked before any work."""
    if getattr(args, "json", None):
        check_output_file(args.json, "--json")
    if getattr(args, "plot", None):
        check_plot_path(args.plot, "--plot")
    if getattr(args, "plots", None):
        check_output_dir(args.plots, "--plots")


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and an atomic rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets the usual permissions
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p
