"""Create and verify the isolated virtualenv that holds Prefect for the benchmark.

Prefect is never installed into the project venv: it lives in ``bench/.prefect-venv``
(git-ignored) and its workloads run in subprocesses of that venv's interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PREFECT_VENV = BENCH_DIR / ".prefect-venv"
PREFECT_REQUIREMENTS: tuple[str, ...] = ("prefect==3.8.8", "fastapi==0.150.0")
PREFECT_VERSION = "3.8.8"
# The cloud-run workload's incumbent: prefect-gcp's cloud-run-v2 worker. 0.6.22 (the
# newest on 2026-12-02) requires prefect>=3.8.4, so it keeps 3.8.8; installed only when
# that workload runs.
PREFECT_GCP_REQUIREMENT = "prefect-gcp==0.6.22"
# Set for every Prefect process; PREFECT_HOME is added per process and every
# other PREFECT_* variable (PREFECT_API_URL above all) is removed.
PREFECT_BENCH_ENV: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # Its ephemeral server must come up within 20 s by default, which a busy
    # 2-core machine misses (both overhead processes failed so on 2026-11-30).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def venv_python(venv: Path = PREFECT_VENV) -> Path:
    """Path of the interpreter inside ``venv``."""
    return venv / "bin" / "python"


def installed_version(venv: Path = PREFECT_VENV) -> str | None:
    """Prefect's version in ``venv``, or None if it is missing or broken."""
    python = venv_python(venv)
    if not python.exists():
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_BENCH_ENV)
    proc = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('prefect'))"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def ensure_prefect_venv(venv: Path = PREFECT_VENV, log: Path | None = None) -> Path:
    """Install Prefect into ``venv`` if it is not already there; return its python.

    The install takes a few minutes the first time; output goes to ``log`` (or to
    this process's stderr).
    """
    if installed_version(venv) == PREFECT_VERSION:
        return venv_python(venv)
    print(f"[bench] installing {' '.join(PREFECT_REQUIREMENTS)} into {venv} ...", flush=True)
    out = log.open("a") if log is not None else None
    try:
        if not venv_python(venv).exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out
            )
        subprocess.run(
            [str(venv_python(venv)), "-m", "pip", "install", "--quiet", *PREFECT_REQUIREMENTS],
            check=True,
            stdout=out,
            stderr=out,
        )
    finally:
        if out is not None:
            out.close()
    version = installed_version(venv)
    if version != PREFECT_VERSION:
        raise RuntimeError(f"prefect install in {venv} failed (found version {version!r})")
    return venv_python(venv)


def ensure_prefect_gcp(python: Path, log: Path | None = None) -> None:
    """Install prefect-gcp (pinned) next to Prefect in ``python``'s venv if it is missing."""
    wanted = PREFECT_GCP_REQUIREMENT.split("==")[1]
    probe = "import importlib.metadata as m; print(m.version('prefect-gcp'))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    if found.stdout.strip() == wanted:
        return
    print(f"[bench] installing {PREFECT_GCP_REQUIREMENT} into {python.parent.parent} ...")
    out = log.open("a") if log is not None else None
    try:
        # prefect is named again so that pip cannot move it off the pinned version.
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                PREFECT_GCP_REQUIREMENT,
                *PREFECT_REQUIREMENTS,
            ],
            check=True,
            stdout=out,
            stderr=out,
        )
    finally:
        if out is not None:
            out.close()


if __name__ == "__main__":
    print(ensure_prefect_venv())
