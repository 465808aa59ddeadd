"""Blocks: typed, schema-described configuration documents with secret fields.

`base` holds the Block model and the masking rule, `registry` the known types
(`gcp-credentials`, `secret`), `references` the `TYPE/NAME` references that job
variables carry. Nothing here is imported by `import skyrun`: only the server's
block routes, the CLI's `block` commands and a worker resolving references load it.
"""
