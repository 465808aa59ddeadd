"""One thin router per resource: parse, call server/db, respond."""
