"""Archive segments: the immutable files archived jobs' events live in (ADR 110).

:mod:`adapters.archive.segment` is the file format; :mod:`adapters.archive.stores` the
places a segment is kept (a directory, S3).
"""
