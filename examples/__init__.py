"""Example job handlers, for the demo, compose.yaml and the tests."""
