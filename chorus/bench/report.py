"""Results JSON, the generated BENCHMARKS.md, and its plots (speedup vs accuracy, hit rate vs cache bytes,
per-stage time)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from chorus.bench.metrics import HALF_WIDTH
from chorus.bench.workload import EDITS
from chorus.vocab import Stage

# The cache's own phases around the engine's stages (chorus.vocab.Stage), in the order a request meets them.
STAGES = ("encode", "lookup", *Stage, "admit", "other")
SYSTEM_ORDER = (
    "no-cache",
    "fbc",
    "magcache",
    "dbcache",
    "nirvana-k25",
    "nirvana-k50",
    "chorus",
    "chorus+tgaa",
    "chorus-no-context",
    "chorus-nearest",
    "chorus+fbc",
    "chorus+magcache",
)


def _order(names) -> list[str]:
    return sorted(names, key=lambda n: SYSTEM_ORDER.index(n) if n in SYSTEM_ORDER else len(SYSTEM_ORDER))


def _rows(result: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    rows = [r for r in result["rows"] if all(r[k] == v for k, v in match.items())]
    rank = {name: i for i, name in enumerate(_order({r["system"] for r in rows}))}
    return sorted(rows, key=lambda r: rank[r["system"]])


def _f(value: float | None, fmt: str = ".2f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def _pct(value: float | None) -> str:
    return _f(None if value is None else 100 * value, ".1f", "%")


# An ablation whose switch acts only in Stage 2 is the same run as what it ablates where no Stage 2 ran:
# its rows say so instead of standing as a silent duplicate.
STAGE2_ABLATIONS = {"chorus+tgaa", "chorus-no-context"}


def _system_label(row: dict[str, Any]) -> str:
    if row["system"] in STAGE2_ABLATIONS and not row.get("stage2_steps"):
        return f"{row['system']} (no Stage 2 ran: same run as chorus, its switch had nothing to act on)"
    if row.get("plans_as_chorus"):
        return f"{row['system']} (every request got the plan chorus gave it: the same run)"
    return row["system"]


def _marked_same_plans(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with each ablation row marked ``plans_as_chorus`` where every request of its run got the plan
    Chorus gave it on the same steps, stream and batch size (an ablation that changed nothing says so)."""

    def plans(system: str, steps: int, stream: str, batch: int) -> list[tuple]:
        return sorted(
            (r["index"], r["reason"], r["stage1"], r["stage2"])
            for r in result["records"]
            if (r["system"], r["steps"], r["stream"], r["batch_size"]) == (system, steps, stream, batch)
        )

    def same(row: dict[str, Any]) -> bool:
        if not row["system"].startswith("chorus-"):
            return False
        where = (row["steps"], row["stream"], row["batch_size"])
        return plans(row["system"], *where) == plans("chorus", *where)

    return {**result, "rows": [dict(r, plans_as_chorus=same(r)) for r in result["rows"]]}


def _table(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        "| system | setting | phase | req/s | speedup | compute | p50 s | p99 s | hit rate | acc. all "
        "| acc. on hits (n) | acc. size | acc. speed | PSNR dB | SSIM | fwd/req |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        out.append(
            f"| {_system_label(r)} | {r['setting']} | {r['phase']} | {_f(r['throughput_rps'])} "
            f"| {_f(r['speedup'], '.2f', 'x')} "
            f"| {_f(r['compute_ratio'])} | {_f(r['latency_p50_s'], '.3f')} | {_f(r['latency_p99_s'], '.3f')} "
            f"| {_pct(r['hit_rate'])} | {_pct(r['accuracy']['all'])} | {_pct(r['accuracy_hits']['all'])} ({r['hits']}) "
            f"| {_pct(r['accuracy'].get('size'))} | {_pct(r['accuracy'].get('speed'))} "
            f"| {_f(r['psnr_db'], '.1f')} | {_f(r['ssim'], '.3f')} | {_f(r['forwards_per_request'], '.1f')} |"
        )
    return out


def _row(result: dict[str, Any], system: str, steps: int, stream: str = "similar") -> dict[str, Any] | None:
    rows = _rows(result, system=system, steps=steps, stream=stream, phase="warm", batch_size=1)
    return rows[0] if rows else None


def _paired(result: dict[str, Any], system: str, steps: int, kind: str = "all", batch: int = 1) -> dict | None:
    """The system's per-kind row against no cache on the same warm similar-stream requests (see
    ``chorus.bench.metrics.paired_rows``)."""
    match = {"system": system, "steps": steps, "kind": kind, "stream": "similar", "batch_size": batch}
    rows = [r for r in result["paired"] if all(r[k] == v for k, v in match.items())]
    return rows[0] if rows else None


def _ci(interval: dict[str, Any] | None) -> str:
    """A paired difference and its interval, in points."""
    if interval is None:
        return "–"
    return f"{100 * interval['diff']:+.1f} [{100 * interval['low']:+.1f}, {100 * interval['high']:+.1f}]"


def _on_off(interval: dict[str, Any] | None) -> str:
    return "–" if interval is None else f"{_pct(interval['on'])} / {_pct(interval['off'])}"


def _kind_table(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        "| system | kind | n | sources | hit rate | compute | acc. all on / off | Δ all, pts [95% CI] "
        "| edited attr. on / off | Δ edited, pts [95% CI] |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        out.append(
            f"| {r['system']} | {r['kind']} | {r['n']} | {r['sources']} | {_pct(r['hit_rate'])} "
            f"| {_f(r['compute_ratio'])} | {_on_off(r['accuracy_all'])} | {_ci(r['accuracy_all'])} "
            f"| {_on_off(r['accuracy_edited'])} | {_ci(r['accuracy_edited'])} |"
        )
    return out


def _kind_rows(result: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    """Per-kind rows in system order, then "all", "hits", the edit kinds and the rest as the trace has them."""
    rows = [r for r in result["paired"] if all(r[k] == v for k, v in match.items())]
    systems = _order({r["system"] for r in rows})
    first = ("all", "hits", *EDITS)
    return sorted(
        rows,
        key=lambda r: (systems.index(r["system"]), first.index(r["kind"]) if r["kind"] in first else len(first)),
    )


# The issue's targets per step count, on the similar stream, warm, paired with no cache: Chorus' compute
# share at most, its throughput ratio at least, all-correct lost at most (points); Chorus composed with an
# intra-request cache at least this throughput ratio, within the same points.
SPEED_TARGETS: dict[int, tuple[float | None, float]] = {4: (None, 1.1), 50: (0.5, 1.8)}
COMPOSED_TARGET = 3.0  # at the many-step regime
MAX_LOSS_POINTS = 1.0


def _within(paired: dict[str, Any] | None) -> bool:
    return paired is not None and 100 * paired["accuracy_all"]["diff"] >= -MAX_LOSS_POINTS


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The issue's targets, each with the measured figure and whether it is met (None: not measurable)."""
    main = result["config"]["steps"][0]
    out = []
    for steps in result["config"]["steps"]:
        chorus, paired = _row(result, "chorus", steps), _paired(result, "chorus", steps)
        if chorus is None or paired is None or steps not in SPEED_TARGETS:
            continue
        max_compute, min_speedup = SPEED_TARGETS[steps]
        bar = (f"compute <= {max_compute}, " if max_compute else "") + f">= {min_speedup}x"
        out.append(
            (
                f"Chorus at {steps} steps (similar, warm): {bar}, all-correct within {MAX_LOSS_POINTS:.0f} point",
                f"compute {chorus['compute_ratio']:.2f}, {chorus['speedup']:.2f}x, hit rate "
                f"{_pct(chorus['hit_rate'])}, all-correct {_on_off(paired['accuracy_all'])} (paired Δ "
                f"{_ci(paired['accuracy_all'])} pts, n={paired['n']} from {paired['sources']} sources)",
                chorus["speedup"] >= min_speedup
                and (max_compute is None or chorus["compute_ratio"] <= max_compute)
                and _within(paired),
            )
        )
        for name in ("chorus+magcache", "chorus+fbc"):
            composed, composed_paired = _row(result, name, steps), _paired(result, name, steps)
            if composed is not None and composed_paired is not None and max_compute is not None:
                out.append(
                    (
                        f"{name} at {steps} steps >= {COMPOSED_TARGET:.0f}x, within {MAX_LOSS_POINTS:.0f} point",
                        f"{composed['speedup']:.2f}x, compute {composed['compute_ratio']:.2f}, all-correct Δ "
                        f"{_ci(composed_paired['accuracy_all'])} pts",
                        composed["speedup"] >= COMPOSED_TARGET and _within(composed_paired),
                    )
                )
    chorus, hits = _row(result, "chorus", main), _paired(result, "chorus", main, "hits")
    if chorus is not None:
        out.append(
            (
                f"Chorus accuracy on its hits within {MAX_LOSS_POINTS:.0f} point of no cache on the same requests",
                "no hits"
                if hits is None
                else f"{_on_off(hits['accuracy_all'])} on {hits['n']} hits (Δ {_ci(hits['accuracy_all'])} pts)",
                None if hits is None else _within(hits),
            )
        )
    nirvana, nirvana_paired = _row(result, "nirvana-k50", main), _paired(result, "nirvana-k50", main)
    paired = _paired(result, "chorus", main)
    if nirvana and chorus and nirvana_paired and paired:
        theirs, ours = (100 * p["accuracy_all"]["diff"] for p in (nirvana_paired, paired))
        out.append(
            (
                f"Chorus beats NIRVANA-style reuse (k50) at {main} steps: as fast or faster, all-correct no more "
                f"than {MAX_LOSS_POINTS:.0f} point below it",
                f"NIRVANA-k50 {nirvana['speedup']:.2f}x, Δ {_ci(nirvana_paired['accuracy_all'])} pts; Chorus "
                f"{chorus['speedup']:.2f}x, Δ {_ci(paired['accuracy_all'])} pts",
                chorus["speedup"] >= nirvana["speedup"] and ours >= theirs - MAX_LOSS_POINTS,
            )
        )
    for name in ("fbc", "magcache", "dbcache"):
        row = _row(result, name, main)
        if row:
            out.append(
                (
                    f"{name} speedup at {main} steps (reported, no target)",
                    f"{row['speedup']:.2f}x, compute {row['compute_ratio']:.2f}",
                    None,
                )
            )
    unrelated, plain = _row(result, "chorus", main, "unrelated"), _row(result, "no-cache", main, "unrelated")
    if unrelated and plain:
        # The latency difference is noisy at this trace length; the cache's own work is timed directly too
        # (its prompt embedding is not: generation reuses that forward).
        stages = unrelated["stage_seconds_per_request"]
        own = stages.get("lookup", 0.0) + stages.get("admit", 0.0)
        out.append(
            (
                "Unrelated stream: Chorus latency overhead <= 3% of no cache",
                f"{100 * unrelated['latency_overhead']:+.1f}% (hit rate {_pct(unrelated['hit_rate'])}; lookup and "
                f"admission timed alone: {1000 * own:.1f} ms, {100 * own / plain['latency_mean_s']:.1f}%)",
                unrelated["latency_overhead"] <= 0.03,
            )
        )
    return out


def _label(row: dict[str, Any]) -> str:
    """The system, and its setting where that says more (chorus+fbc and fbc share one)."""
    return row["system"] if row["setting"] == row["system"] else f"{row['system']} ({row['setting']})"


def plot_speed_accuracy(result: dict[str, Any], steps: int, path: Path) -> None:
    # A legend, not labels beside the points: systems often land on the same spot.
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    markers = "osD^vP*Xh<>"
    for i, r in enumerate(_rows(result, steps=steps, stream="similar", phase="warm", batch_size=1)):
        if r["speedup"] is None or r["accuracy"]["all"] is None:
            continue
        ax.scatter(r["speedup"], 100 * r["accuracy"]["all"], s=55, marker=markers[i % len(markers)], label=_label(r))
    tuned = [t for t in result["tuning"] if t["steps"] == steps]
    if tuned:
        ax.scatter(
            [t["speedup"] for t in tuned],
            [100 * t["accuracy"]["all"] for t in tuned],
            s=30,
            facecolors="none",
            edgecolors="gray",
            label="intra-cache thresholds tried (tuning set)",
        )
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.axvline(1.0, color="lightgray", lw=1)
    ax.set_xlabel("speedup over no cache (throughput, batch 1)")
    ax.set_ylabel("attribute accuracy, all four (%)")
    ax.set_title(f"Similar-prompt stream, warm cache, {steps} steps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_hit_rate_bytes(result: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for system in _order({p["system"] for p in result["sweep"]}):
        points = sorted((p for p in result["sweep"] if p["system"] == system), key=lambda p: p["cache_bytes"])
        ax.plot([p["cache_bytes"] / 2**20 for p in points], [100 * p["hit_rate"] for p in points], "o-", label=system)
    ax.set_xlabel("cache bytes at the end of the run (MiB)")
    ax.set_ylabel("hit rate, warm phase (%)")
    ax.set_title("Similar-prompt stream: hit rate vs cache size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_stages(result: dict[str, Any], steps: int, path: Path) -> None:
    rows = _rows(result, steps=steps, stream="similar", phase="warm", batch_size=1)
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = [0.0] * len(rows)
    for stage in STAGES:
        values = [1000 * r["stage_seconds_per_request"].get(stage, 0.0) for r in rows]
        ax.bar([_label(r) for r in rows], values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("ms per request (mean)")
    ax.set_title(f"Where the time goes: similar stream, warm, {steps} steps, batch 1")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _kind_section(result: dict[str, Any], steps: int) -> list[str]:
    """Per request kind, every system against no cache on the same requests and seeds, with intervals."""
    lines = [
        f"## Per request kind, paired with no cache ({steps} steps, warm phase, batch 1)",
        "",
        "Each system against no cache on the same requests and seeds. *Kind*: the attribute an edit changes "
        "(colour: appearance, shape: identity, direction: motion, background: global scene, size, speed), "
        "*seed variant* (a prompt sent before, new seed), *new*; *all* is every request, *hits* the system's "
        "hits. *Edited attr.*: the edited attribute right, over the edits among the row's requests. Δ is on "
        "minus off, in points, with a 95% bootstrap interval resampling sources (a request and the requests "
        "derived from it), since requests reusing one source share its mistakes.",
        "",
    ]
    main = _paired(result, "chorus", steps)
    if main:
        needed, half = main["requests_for_half_width"], f"±{100 * HALF_WIDTH:.0f} points"
        sizing = (
            f"no request came out differently with the cache on, so this run cannot say how many {half} takes"
            if needed is None
            else f"for {half} a stream like this needs about {needed} warm requests"
        )
        lines += [
            f"Main comparison (Chorus vs no cache, similar stream, accuracy all): Δ {_ci(main['accuracy_all'])} "
            f"pts on {main['n']} requests from {main['sources']} sources; {sizing}.",
            "",
        ]
    for stream in result["streams"]:
        lines += [f"### {stream} stream", ""]
        lines += _kind_table(_kind_rows(result, steps=steps, stream=stream, batch_size=1))
        lines.append("")
    return lines


def write_results(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result['mode']}.json"
    path.write_text(json.dumps(result, indent=1, allow_nan=False))
    return path


def write_report(result: dict[str, Any], results_dir: Path, report: Path, caveat: str = "") -> list[Path]:
    """Plots under ``results_dir/plots`` and the markdown report; returns the plot paths."""
    result = _marked_same_plans(result)
    plots_dir = results_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    main, *many = result["config"]["steps"]
    name = result["mode"]
    plots = {f"speed_accuracy_{s}": plots_dir / f"{name}-speed-accuracy-{s}steps.png" for s in [main, *many]}
    if result["sweep"]:  # the many-step mode runs no budget sweep
        plots["hit_rate_bytes"] = plots_dir / f"{name}-hit-rate-bytes.png"
        plot_hit_rate_bytes(result, plots["hit_rate_bytes"])
    plots["stages"] = plots_dir / f"{name}-stages-{main}steps.png"
    for s in [main, *many]:
        plot_speed_accuracy(result, s, plots[f"speed_accuracy_{s}"])
    plot_stages(result, main, plots["stages"])

    def link(p: Path) -> str:
        return os.path.relpath(p, report.parent)

    model, machine = result["model"], result["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `chorus bench` (chorus/bench/); do not edit by hand. "
        f"Mode **{name}**, model `{model['id']}@{model['revision']}`, {machine['device']} "
        f"({machine['platform']}, torch {machine['torch']}, {machine['threads']} threads), "
        f"run took {result['wall_seconds']:.0f} s. Raw figures: `{link(results_dir / f'{name}.json')}`.",
        "",
    ]
    if caveat:
        lines += [f"> {caveat}", ""]
    lines += [
        "Every system runs the same traces (bench/traces/) on the same model in one process, the systems "
        "taking turns request by request (batch by batch), so outside load slows them alike; each keeps its "
        "own memory of encoded prompts, as in a worker of its own. Speedup is "
        "throughput over no cache for the same stream, phase, batch size and steps; *compute* is tokens "
        "through transformer blocks relative to no cache (counts intra-cache block skips); accuracy *all* is the "
        "checker's colour, shape, direction and background all right (as in runs before size and speed were "
        "read); size and speed have columns of their own; PSNR/SSIM compare with the no-cache "
        "video of the same prompt and seed (PSNR capped at 60 dB). *Cold* = warm-up prefix on an empty cache.",
        "",
    ]
    lines += ["## Targets (issue 22)", "", "| target | measured | met |", "|---|---|---|"]
    for target, measured, met in targets(result):
        lines.append(f"| {target} | {measured} | {'n/a' if met is None else ('yes' if met else 'no')} |")
    lines.append("")
    for stream in result["streams"]:
        lines += [f"## {stream} stream, {main} steps, batch 1", ""]
        lines += _table(_rows(result, steps=main, stream=stream, batch_size=1, phase="warm"))
        lines += ["", "Cold phase:", ""]
        lines += _table(_rows(result, steps=main, stream=stream, batch_size=1, phase="cold"))
        lines.append("")
    lines += _kind_section(result, main)
    batch = result["config"]["batch_size"]
    if batched := _rows(result, steps=main, stream="similar", batch_size=batch, phase="warm"):
        lines += [f"## Batched (batch {batch}), similar stream, {main} steps", "", *_table(batched), ""]
    for s in many:
        lines += [f"## Many-step regime: {s} steps, similar stream, batch 1", ""]
        lines += _table(_rows(result, steps=s, stream="similar", batch_size=1, phase="warm"))
        lines += ["", f"![speedup vs accuracy, {s} steps]({link(plots[f'speed_accuracy_{s}'])})", ""]
        lines += ["Per request kind, paired with no cache:", ""]
        lines += _kind_table(_kind_rows(result, steps=s, stream="similar", batch_size=1))
        lines.append("")
    lines += [
        "## Intra-request cache tuning",
        "",
        f"Each threshold runs the first {result['config']['tune_requests']} warm similar-stream prompts; the "
        "pick is the one computing least whose PSNR vs no cache stays >= 30 dB and whose accuracy drops "
        "<= 2 points (else the smallest threshold). MagCache's ratios are calibrated on this model first.",
        "",
        "| cache | steps | threshold | compute | speedup | PSNR dB | acc. delta | within bounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in result["tuning"]:
        lines.append(
            f"| {t['kind']} | {t['steps']} | {t['threshold']:g} | {_f(t['compute_ratio'])} | {_f(t['speedup'])}x "
            f"| {_f(t['psnr_db'], '.1f')} | {_f(100 * t['accuracy_delta'], '+.1f')} pts | {t['within_bounds']} |"
        )
    lines += [
        "",
        f"Chosen: `{json.dumps({k: v for k, v in result['intra_cache_choice'].items() if 'ratios' not in k})}`",
    ]
    if result["sweep"]:
        lines += [
            "",
            "## Hit rate vs cache bytes (Chorus, similar stream, warm phase)",
            "",
            "| system | budget (share of unbounded) | cache bytes | hit rate | accuracy | req/s |",
            "|---|---|---|---|---|---|",
        ]
        for p in sorted(result["sweep"], key=lambda p: (p["system"], p["budget_share"])):
            lines.append(
                f"| {p['system']} | {p['budget_share']:.2f} | {p['cache_bytes']:,} | {_pct(p['hit_rate'])} "
                f"| {_pct(p['accuracy_all'])} | {_f(p['throughput_rps'])} |"
            )
    lines += ["", "## Other measurements", "", "Each script's figures, in `bench/results/`:", ""]
    lines += [f"- [{md.stem}]({link(md)})" for md in sorted(results_dir.glob("*.md"))]
    lines += [
        "",
        "## Plots",
        "",
        f"![speedup vs accuracy]({link(plots[f'speed_accuracy_{main}'])})",
        "",
        *([f"![hit rate vs cache bytes]({link(plots['hit_rate_bytes'])})", ""] if "hit_rate_bytes" in plots else []),
        f"![per-stage time]({link(plots['stages'])})",
        "",
    ]
    report.write_text("\n".join(lines))
    return list(plots.values())
