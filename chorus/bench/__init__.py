"""The speed/quality benchmark (``chorus bench``): Chorus against no cache, diffusers' intra-request caches
and NIRVANA-style reuse, on seeded workload traces, through the same cache session as the worker.

Modules, one job each:
- workload: seeded prompt streams (similar, seed-variants, unrelated), each with exact repeats saved as JSONL traces
- systems: the systems compared and the loop that runs a trace through one of them
- metrics: per-request records aggregated per system, stream and phase, and paired with no cache per
  request kind
- paired: paired confidence intervals (cache on vs off on the same requests), and stream sizing
- report: results JSON, BENCHMARKS.md and its plots
- runner: modes (quick, full), tuning of the intra-request caches, the whole run

One place per concern: the benchmark's logic lives here (the installed ``chorus`` command imports it) and
drives the service's own cache session; ``bench/`` holds standalone scripts (load, API submit, lookup,
engine micro-benchmarks, the reuse sweep: each docstring says how to run it and what it prints), the
traces, and ``bench/results/`` every measured figure (JSON from ``chorus bench``, a markdown file per
script); BENCHMARKS.md is the generated report.
"""
