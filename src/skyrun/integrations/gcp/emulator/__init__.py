"""A local stand-in for the Cloud Run Admin API v2 (jobs, executions, operations).

Google ships no emulator for Cloud Run jobs; this one speaks Google's wire format
(driven in tests by Google's own `google-cloud-run` client) and really runs each
execution's tasks: as local processes (`--execute process`) or inside the job's
image with buildah (`--execute image`). `skyrun cloud-run emulator` serves it;
`app.create_emulator_app(config)` is the ASGI app. Fault injection and call
counts for tests: see `faults`. Needs the `gcp` extra.
"""
