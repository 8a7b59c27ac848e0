//! Harness for end-to-end scenarios.
