"""job-ledger's domain: job events, the job model, commands, policies and the application.

Nothing in this package performs I/O on its own or reads the clock: time is always an
argument, and storage is whatever eventsourcing infrastructure the composition root
(`adapters.service.bootstrap`) configures.
"""
