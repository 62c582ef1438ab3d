"""The demo company: a deterministic 3CX-style dataset whose audio identifies itself (see ``tonecode``)."""
