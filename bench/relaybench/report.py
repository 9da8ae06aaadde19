"""Tables and targets (issue 8) from the results of all runs."""

from .stats import median, percentile

AGENT = ("kbgp", "kbgp-listener", "kbgp-uplink", "kbgp-admin")
STUNNELS = ("stunnel-client", "stunnel-server")
TIME_TARGET = 1.10
LATENCY_P99_TARGET_MS = 1.0


def _fmt(v, spec="%.3f", none="-"):
    return none if v is None else spec % v


def _by_path(results):
    out = {}
    for r in results:
        out.setdefault(r["path"], []).append(r)
    return out


def _median_of(rs, key):
    return median([r[key] for r in rs])


def _proc_medians(rs, field):
    """{process label: median over runs of r[field][label]}."""
    labels = []
    for r in rs:
        labels += [k for k in r[field] if k not in labels]
    return {k: median([r[field].get(k) for r in rs]) for k in labels}


def _sum_median(rs, field, labels):
    """Median over runs of the per-run sum over `labels` (None if a label
    is missing in every run)."""
    sums = []
    for r in rs:
        vals = [r[field].get(k) for k in labels]
        if all(v is not None for v in vals):
            sums.append(sum(vals))
    return median(sums)


BUSY_WARN_CORES = 0.2


def load_note(results):
    """A warning when other programs used CPU during some runs."""
    busy = [r for r in results if (r.get("other_cores") or 0) > BUSY_WARN_CORES]
    if not busy:
        worst = max((r.get("other_cores") or 0) for r in results) if results else 0
        return "Other programs used at most %.2f cores during any run." % worst
    return ("WARNING: other programs used more than %.1f cores during %d of %d runs (%s). They ran "
            "at a lower priority than the benchmark (--nice), so mostly on cores it left idle; the "
            "`CPU wait s` column shows how long the benchmark's processes waited for a CPU." % (
                BUSY_WARN_CORES, len(busy), len(results),
                ", ".join("%s run %d: %.2f" % (r["path"], r["run"], r["other_cores"]) for r in busy)))


def coarse_note(results):
    """Lines naming the runs whose CPU for some process is in clock ticks
    (10 ms) rather than nanoseconds (procstat.CpuMeter.used)."""
    coarse = ["%s run %d: %s" % (r["path"], r["run"], ", ".join(r["cpu_coarse"]))
              for r in results if r.get("cpu_coarse")]
    if not coarse:
        return ["CPU seconds: each thread's run time in ns (schedstat), summed per process."]
    return ["NOTE: CPU of these in clock ticks (10 ms; a thread ended during the run): " + "; ".join(coarse)]


def _mark(ok):
    if ok is None:
        return "[ n/a  ]"
    return "[  met ]" if ok else "[NOT met]"


def table_report(results, paths, title):
    by = _by_path(results)
    lines = [title, ""]
    direct = _median_of(by["direct"], "time_s") if "direct" in by else None
    hdr = "%-8s %9s %8s %12s %13s %11s %11s   %s" % ("path", "time s", "x direct", "relay CPU s",
                                                       "sender CPU s", "recv CPU s", "CPU wait s",
                                                       "runs: time s")
    lines += [hdr, "-" * len(hdr)]
    for p in paths:
        rs = by.get(p)
        if not rs:
            continue
        t = _median_of(rs, "time_s")
        relay_labels = rs[0]["relays"]
        relay_cpu = _sum_median(rs, "cpu", relay_labels) if relay_labels else None
        cpu = _proc_medians(rs, "cpu")
        lines.append("%-8s %9.3f %8s %12s %13s %11s %11s   %s" % (
            p, t, _fmt(t / direct if direct else None, "%.2f"), _fmt(relay_cpu, "%.3f"),
            _fmt(cpu.get("sender BIRD"), "%.2f"), _fmt(cpu.get("receiver BIRD"), "%.2f"),
            _fmt(_median_of(rs, "cpu_wait_s"), "%.2f"),
            " ".join("%.3f" % r["time_s"] for r in rs)))
    lines += ["", _process_table(by, paths), "", load_note(results)] + coarse_note(results)
    lines += ["", "Targets (issue 8, full-table mode):"]
    lines += table_targets(by, direct)
    return "\n".join(lines)


def _process_table(by, paths):
    hdr = "%-8s %-16s %10s %14s" % ("path", "process", "CPU s", "peak RSS MiB")
    lines = ["Relay processes (medians over runs):", hdr, "-" * len(hdr)]
    for p in paths:
        rs = by.get(p)
        if not rs or not rs[0]["relays"]:
            continue
        cpu = _proc_medians(rs, "cpu")
        rss = _proc_medians(rs, "rss_kib")
        for label in rs[0]["relays"]:
            lines.append("%-8s %-16s %10s %14s" % (p, label, _fmt(cpu.get(label), "%.3f"),
                                                   _fmt(rss.get(label) / 1024 if rss.get(label) else None,
                                                        "%.1f")))
        if p == "kbgp":
            lines.append("%-8s %-16s %10s" % (p, "agent (4 procs)", _fmt(_sum_median(rs, "cpu", AGENT), "%.3f")))
            lines.append("%-8s %-16s %10s" % (p, "agent + ingest", _fmt(
                _sum_median(rs, "cpu", AGENT + ("kbgp-ingest",)), "%.3f")))
        if p == "stunnel":
            lines.append("%-8s %-16s %10s" % (p, "both stunnels", _fmt(_sum_median(rs, "cpu", STUNNELS), "%.3f")))
    return "\n".join(lines)


def table_targets(by, direct):
    out = []
    if "kbgp" in by and direct:
        ratio = _median_of(by["kbgp"], "time_s") / direct
        out.append("  %s kbgp time <= %.2f x direct: %.2f x (median %.3f s vs %.3f s)" % (
            _mark(ratio <= TIME_TARGET), TIME_TARGET, ratio, _median_of(by["kbgp"], "time_s"), direct))
    else:
        out.append("  %s kbgp time <= %.2f x direct: needs both paths" % (_mark(None), TIME_TARGET))
    if "kbgp" in by and "stunnel" in by:
        agent = _sum_median(by["kbgp"], "cpu", AGENT)
        with_ingest = _sum_median(by["kbgp"], "cpu", AGENT + ("kbgp-ingest",))
        tunnels = _sum_median(by["stunnel"], "cpu", STUNNELS)
        out.append("  %s agent CPU (kbgp's 4 processes) <= both stunnels' CPU: %.3f s vs %.3f s "
                   "(agent + kbgp-ingest: %.3f s)" % (_mark(agent <= tunnels), agent, tunnels, with_ingest))
    else:
        out.append("  %s agent CPU <= both stunnels' CPU: needs the kbgp and stunnel paths" % _mark(None))
    return out


def raw_report(results, paths, title):
    by = _by_path(results)
    lines = [title, ""]
    hdr = "%-8s %12s %9s %9s %8s %12s %12s %11s   %s" % ("path", "messages/s", "MB/s", "time s", "x direct",
                                                        "relay CPU s", "gen+sink CPU", "CPU wait s",
                                                        "runs: messages/s")
    lines += [hdr, "-" * len(hdr)]
    direct = _median_of(by["direct"], "time_s") if "direct" in by else None
    for p in paths:
        rs = by.get(p)
        if not rs:
            continue
        t = _median_of(rs, "time_s")
        relay_labels = rs[0]["relays"]
        relay_cpu = _sum_median(rs, "cpu", relay_labels) if relay_labels else None
        tools = _sum_median(rs, "cpu", ["generator", "sink"])
        lines.append("%-8s %12.0f %9.1f %9.3f %8s %12s %12s %11s   %s" % (
            p, median([r["messages"] / r["time_s"] for r in rs]),
            median([r["bytes"] / r["time_s"] / 1e6 for r in rs]), t,
            _fmt(t / direct if direct else None, "%.2f"), _fmt(relay_cpu, "%.3f"), _fmt(tools, "%.3f"),
            _fmt(_median_of(rs, "cpu_wait_s"), "%.2f"),
            " ".join("%.0f" % (r["messages"] / r["time_s"]) for r in rs)))
    lines += ["", _process_table(by, paths), "", load_note(results)] + coarse_note(results)
    lines += ["", "Target (issue 8, --raw):"]
    if "kbgp" in by and "stunnel" in by:
        k = median([r["messages"] / r["time_s"] for r in by["kbgp"]])
        s = median([r["messages"] / r["time_s"] for r in by["stunnel"]])
        lines.append("  %s kbgp messages/s >= stunnel messages/s: %.0f vs %.0f (%.2f x)" % (
            _mark(k >= s), k, s, k / s))
    else:
        lines.append("  %s kbgp messages/s >= stunnel: needs the kbgp and stunnel paths" % _mark(None))
    return "\n".join(lines)


def latency_report(results, paths, title):
    by = _by_path(results)
    lines = [title, ""]
    hdr = "%-8s %9s %9s %9s %9s %14s %14s" % ("path", "samples", "p50 ms", "p99 ms", "max ms",
                                              "added p50 ms", "added p99 ms")
    lines += [hdr, "-" * len(hdr)]
    pooled = {p: [d for r in rs for d in r["delays_ms"]] for p, rs in by.items()}
    base = pooled.get("direct")
    b50 = percentile(base, 50) if base else None
    b99 = percentile(base, 99) if base else None
    for p in paths:
        d = pooled.get(p)
        if not d:
            continue
        p50, p99 = percentile(d, 50), percentile(d, 99)
        lines.append("%-8s %9d %9.3f %9.3f %9.3f %14s %14s" % (
            p, len(d), p50, p99, max(d), _fmt(p50 - b50 if b50 is not None else None),
            _fmt(p99 - b99 if b99 is not None else None)))
    lines += ["", "(one-way: generator send -> sink receive, same host clock; \"added\" = path minus direct,",
              " percentiles over all runs' samples pooled)", "", load_note(results), "",
              "Target (issue 8, --latency):"]
    if "kbgp" in pooled and base:
        added = percentile(pooled["kbgp"], 99) - b99
        lines.append("  %s kbgp added latency p99 <= %.1f ms: %.3f ms (p99 %.3f ms vs direct %.3f ms)" % (
            _mark(added <= LATENCY_P99_TARGET_MS), LATENCY_P99_TARGET_MS, added,
            percentile(pooled["kbgp"], 99), b99))
    else:
        lines.append("  %s kbgp added latency p99 <= 1 ms: needs the kbgp and direct paths" % _mark(None))
    return "\n".join(lines)
