"""The installed skyrun version (single source: pyproject.toml)."""

__version__ = "0.1.0"
