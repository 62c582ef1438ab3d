"""The two stores: the call store (DuckDB, immutable generations) and the state store (SQLite WAL, or PostgreSQL)."""
