"""`skyrun work-pool create --type T` for a type skyrun cannot fill in: one line saying what to do."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from processes import SKYRUN, clean_env


def skyrun(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SKYRUN), *args], env=clean_env(home), capture_output=True, text=True, timeout=120
    )


def one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_an_unknown_type_is_refused_and_a_known_one_gets_its_template(tmp_path: Path) -> None:
    # (A known type whose module is not installed: tests/integration/test_deployment_rules.py.)
    created = skyrun(tmp_path, "work-pool", "create", "cr", "--type", "cloud-run")
    assert created.returncode == 0, created.stderr
    shown = skyrun(tmp_path, "work-pool", "inspect", "cr", "-o", "json")
    assert '"api_endpoint"' in shown.stdout and '"block_type": "gcp-credentials"' in shown.stdout
    assert skyrun(tmp_path, "work-pool", "delete", "cr").returncode == 0
    one_error_line(
        skyrun(tmp_path, "work-pool", "create", "k8s", "--type", "kubernetes"),
        "unknown worker type 'kubernetes'",
        "known types: cloud-run, process",
    )
    listed = skyrun(tmp_path, "work-pool", "ls", "-o", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []

    # A type of one's own, with its template: created, with a warning that no
    # worker of skyrun's runs it.
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"job_configuration": {}, "variables": {"properties": {}}}))
    own = skyrun(
        tmp_path, "work-pool", "create", "mine", "--type", "my-own", "--base-job-template",
        str(template),
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert "no worker for type 'my-own'" in own.stderr
