"""The skyrun server: REST API, database, orchestration rules and services."""
