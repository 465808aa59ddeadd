"""The process worker's default base job template (plain data, no imports)."""

from __future__ import annotations

from typing import Any

PROCESS_JOB_TEMPLATE: dict[str, Any] = {
    "job_configuration": {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "working_dir": "{{ working_dir }}",
        "stream_output": "{{ stream_output }}",
    },
    "variables": {
        "type": "object",
        "properties": {
            "command": {
                "type": ["string", "null"],
                "title": "Command",
                "description": "Run this instead of 'skyrun flow-run execute' (rarely needed).",
                "default": None,
            },
            "env": {
                "type": "object",
                "title": "Environment variables",
                "additionalProperties": {"type": ["string", "null"]},
                "default": {},
            },
            "working_dir": {
                "type": ["string", "null"],
                "title": "Working directory",
                "description": "Where the flow run's process starts (default: a new temporary folder).",
                "default": None,
            },
            "stream_output": {
                "type": "boolean",
                "title": "Stream output",
                "description": "Send the process's output to the run's logs.",
                "default": True,
            },
        },
    },
}
