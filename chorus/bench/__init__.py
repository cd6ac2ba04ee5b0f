"""The speed/quality benchmark (``chorus bench``): Chorus against no cache, diffusers' intra-request caches
and NIRVANA-style reuse, on seeded workload traces, through the engine as a library.

Modules, one job each:
- workload: seeded prompt streams (similar, repeat, unrelated) saved as JSONL traces
- systems: the systems compared and the loop that runs a trace through one of them
- metrics: per-request records aggregated per system, stream and phase
- report: results JSON, BENCHMARKS.md and its plots
- runner: modes (quick, full), tuning of the intra-request caches, the whole run

The logic lives in the ``chorus`` package (not in bench/) so that the installed ``chorus`` command can
import it; bench/ holds the traces and results it writes.
"""
