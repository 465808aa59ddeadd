"""Pydantic models shared by the client and the server: X, XCreate, XUpdate."""
