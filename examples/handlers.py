"""The example handlers' old name, for commands run from the repository root: they ship
with the package as :mod:`adapters.worker.examples` (``ledger worker --handler
adapters.worker.examples:NAME`` works from any directory)."""

from adapters.worker.examples import always_fails, flaky, noop, sleepy, sleepy_plain

__all__ = ["always_fails", "flaky", "noop", "sleepy", "sleepy_plain"]
