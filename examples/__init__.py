"""The example handlers' old name (they live in :mod:`adapters.worker.examples`)."""
