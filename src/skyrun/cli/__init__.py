"""The `skyrun` command: thin typer commands that each parse and call one function."""
