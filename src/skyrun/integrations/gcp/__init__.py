"""Google Cloud: the `cloud-run` worker type, its credentials and its job template.

Everything here except `job_template` (plain data the server reads) needs the
`gcp` extra (`pip install 'skyrun[gcp]'`).
"""
