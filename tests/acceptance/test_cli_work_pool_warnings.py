"""`skyrun work-pool create/update --base-job-template FILE` warn, naming the file, about
variables the template declares but never uses; the pool is still saved."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from worker_support import SKYRUN, clean_env

TEMPLATE = {
    "job_configuration": {"command": "{{ command }}"},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": ["string", "null"], "default": None},
            "unused": {"type": "integer", "default": 1},
        },
    },
}


def skyrun(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # COLUMNS: a wide console keeps each warning on one line.
    result = subprocess.run(
        [str(SKYRUN), *args],
        env=clean_env(home, COLUMNS="400"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_create_and_update_warn_about_unused_variables(tmp_path: Path) -> None:
    home = tmp_path / "home"
    template = tmp_path / "template.json"
    template.write_text(json.dumps(TEMPLATE))
    unused = "variable 'unused' is declared but not used in job_configuration"
    warning = f"Warning: {template}: {unused}"

    created = skyrun(home, "work-pool", "create", "main", "-t", "process")
    assert "Warning" not in created.stderr  # the default template uses all it declares
    updated = skyrun(home, "work-pool", "update", "main", "--base-job-template", str(template))
    assert warning in updated.stderr.splitlines()
    assert "Updated work pool 'main': base job template." in updated.stdout
    other = skyrun(home, "work-pool", "create", "other", "-t", "process",
                   "--base-job-template", str(template))  # fmt: skip
    assert warning in other.stderr.splitlines()

    inspected = json.loads(skyrun(home, "work-pool", "inspect", "main", "-o", "json").stdout)
    assert inspected["base_job_template"] == TEMPLATE
