"""Click commands of one topic each (archive, audit, serve, ...), registered on ``dimnb.cli.main``."""
