"""Integrations with other platforms; each subpackage needs its pip extra."""
