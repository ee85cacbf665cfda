"""The disk spool: records the memory buffer cannot hold, kept in order on local disk.

:mod:`.framing` (pure) frames payloads with a length and a CRC and finds where a damaged
log stops being readable; :mod:`.records` (pure) turns an :class:`~ingester.pipeline.OutRecord`
into a payload and back; :mod:`.log` is the file adapter, an append-only segment log with a
persisted read position.
"""
