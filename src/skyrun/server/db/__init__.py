"""The only place that speaks SQL: engine, ORM models, repositories, migrations."""
