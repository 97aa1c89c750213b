//! Integration tests for milink (see `tests/`).
