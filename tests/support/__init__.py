"""Test support: real servers for integration tests and benchmarks."""
