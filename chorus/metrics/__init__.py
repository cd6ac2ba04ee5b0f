"""Service metrics, collected apart from where they go. Torch-free.

- ``stats``: the dataclasses: one finished job's figures (``JobStats``), a scrape-time snapshot of the
  service (``ServiceStats``);
- ``record``: workers write ``JobStats`` into the broker's Redis as cumulative histograms and counters;
- ``collect``: reads Postgres and Redis into a ``ServiceStats``;
- exporters: ``prometheus`` (``GET /metrics``) and ``queue_cli`` (``chorus queue``: text or JSON).
"""
