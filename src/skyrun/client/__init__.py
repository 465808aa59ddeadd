"""The API client: HTTP to a server, or in-process to the embedded database."""
