"""--raw and --latency: our generator (bench/bgpgen.py gen) -> path -> our
sink (bgpgen.py sink), no BGP daemon in the measurement.

raw: the generator sends --messages pre-built UPDATEs as fast as the path
takes them; the time runs from its first UPDATE byte handed to the kernel
to the sink's last byte received (both CLOCK_MONOTONIC on this host).

latency: the generator sends one timestamped UPDATE every 1/--rate s; the
sink records receive time minus send time for each; the first --warmup
messages (stream set-up effects) are left out.
"""

import json
import os
import sys
import time

from kbgptest.errors import TestFailure

from . import procstat
from .profiling import PerfRecorder
from .daemons import RECEIVER_IP, SENDER_IP
from .mode_table import retrying
from .paths import listening, make_path

BGPGEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bgpgen.py")


def _read_result(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _wait_results(ctx, files, procs, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = [_read_result(f) for f in files]
        if all(got):
            return got
        for p in procs:
            if not p.alive():
                raise TestFailure("%s exited with status %s before it was done (log %s)" % (
                    p.name, p.exited_with(), p.log_path))
        if time.monotonic() > deadline:
            raise TestFailure("%s not done after %.0f s" % (what, timeout))
        time.sleep(0.01)


def run_once(ctx, path_name, run_index, args, binaries, latency):
    kind = "latency" if latency else "raw"
    ctx.subdir("%s-%s-run%d" % (kind, path_name, run_index))
    sink_port = ctx.free_port(RECEIVER_IP)
    sink_result = ctx.path("sink.json")
    gen_result = ctx.path("gen.json")
    py = sys.executable
    if latency:
        n = args.latency_count + args.warmup
        sink_args = ["--latency", "--expect-messages", str(n)]
        gen_args = ["--rate", str(args.rate), "--messages", str(n)]
    else:
        per = args.prefixes_per_update
        # Every message of the block has the same size (same prefix count).
        msg_bytes = 19 + 4 + 42 + 4 * per
        sink_args = ["--expect-bytes", str(args.messages * msg_bytes)]
        gen_args = ["--messages", str(args.messages)]
    if args.verify:
        sink_args.append("--verify")
        gen_args.append("--verify")
    sink = ctx.spawn("sink", [py, BGPGEN, "sink", "--listen", "%s:%d" % (RECEIVER_IP, sink_port),
                              "--result", sink_result, "--timeout", str(args.run_timeout), *sink_args])
    ctx.wait_until(lambda: listening(RECEIVER_IP, sink_port) or (not sink.alive() and _dead(sink)),
                   20, "the sink to listen", interval=0.02)
    path = make_path(path_name, ctx, RECEIVER_IP, sink_port, binaries).start()
    relays = path.processes()
    meter = procstat.CpuMeter({**relays, "sink": sink.pid})
    procstat.wait_quiet(args.quiet_wait, log=ctx.step)
    load = procstat.LoadMeter()
    load.start()
    recorder = None
    if path_name in args.perf_paths and relays:
        recorder = PerfRecorder(ctx, relays, kind)
        recorder.start()
    meter.start()
    gen = ctx.spawn("generator", [py, BGPGEN, "gen", "--connect", "%s:%d" % path.entry, "--bind", SENDER_IP,
                                  "--prefixes-per-update", str(args.prefixes_per_update),
                                  "--result", gen_result, *gen_args])
    meter.procs["generator"] = gen.pid
    meter.before["generator"] = 0.0  # a new process: its CPU so far includes its start
    g, s = _wait_results(ctx, [gen_result, sink_result], [gen, sink], args.run_timeout,
                         "%s run %d over %s" % (kind, run_index, path_name))
    meter.stop()
    if recorder:
        recorder.stop()
    used = meter.used()
    res = {"path": path_name, "run": run_index, "cpu": used, "cpu_coarse": sorted(meter.coarse),
           "rss_kib": meter.peak_rss(),
           "relays": list(relays), "perf_files": recorder.files if recorder else {},
           "other_cores": load.foreign_cores(sum(v for v in used.values() if v)),
           "cpu_wait_s": meter.cpu_wait()}
    if latency:
        delays = s["delays_ns"][args.warmup:]
        res["delays_ms"] = [d / 1e6 for d in delays]
        seqs = s["seqs"]
        if seqs != list(range(len(seqs))):
            raise TestFailure("latency run over %s: messages arrived out of order or were lost" % path_name)
        return res
    if s["bytes"] != g["bytes"]:
        raise TestFailure("raw run over %s: the sink got %d bytes, the generator sent %d"
                          % (path_name, s["bytes"], g["bytes"]))
    if args.verify and s["crc32"] != g["crc32"]:
        raise TestFailure("raw run over %s: CRC32 differs: bytes were changed on the way" % path_name)
    res.update({"messages": g["messages"], "bytes": g["bytes"],
                "time_s": (s["last_ns"] - g["start_ns"]) / 1e9,
                "send_s": (g["sent_ns"] - g["start_ns"]) / 1e9})
    return res


def _dead(proc):
    raise TestFailure("%s exited with status %s (log %s)" % (proc.name, proc.exited_with(), proc.log_path))


def run(ctx, args, paths, binaries, results, latency=False):
    """Like mode_table.run: results are appended to `results` as they come."""
    kind = "latency" if latency else "raw"
    for r in range(1, args.runs + 1):
        for p in paths:
            ctx.step("%s run %d/%d, path %s" % (kind, r, args.runs, p))
            res = retrying(ctx, args, lambda: run_once(ctx, p, r, args, binaries, latency))
            if latency:
                d = sorted(res["delays_ms"])
                ctx.step("  %s: p50 %.3f ms, max %.3f ms over %d messages" % (p, d[len(d) // 2], d[-1], len(d)))
            else:
                ctx.step("  %s: %.3f s, %.0f messages/s, %.1f MB/s" % (
                    p, res["time_s"], res["messages"] / res["time_s"], res["bytes"] / res["time_s"] / 1e6))
            results.append(res)
    return results
