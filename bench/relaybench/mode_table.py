"""Full-table mode: BIRD sender -> path -> BIRD receiver.

One run of one path: start the receiver, the relay and the sender (its BGP
protocol disabled) with fresh processes; once the sender holds every static
route, read the CPU counters of every process and enable the session. The
clock starts when the receiver's session is Established and stops at the
first poll that finds every route imported; each poll also pokes both BIRDs
(see bgp-test-peers.md: BIRD may hold its last batch back ~3 s when idle).
"""

import time

from kbgptest.errors import TestFailure

from . import procstat
from .profiling import PerfRecorder
from .daemons import RECEIVER_IP, Receiver, Sender
from .paths import make_path

ESTABLISHED_POLL_S = 0.005


def run_once(ctx, path_name, run_index, routes_file, n4, n6, binaries, timeout, poll_s, quiet_wait,
             perf=False):
    """Returns a result dict for one transfer; raises TestFailure."""
    ctx.subdir("table-%s-run%d" % (path_name, run_index))
    receiver = Receiver(ctx, ctx.free_port(RECEIVER_IP)).start()
    path = make_path(path_name, ctx, RECEIVER_IP, receiver.port, binaries).start()
    sender = Sender(ctx, routes_file, *path.entry).start()
    want = n4 + n6
    ctx.wait_until(lambda: sender.loaded_routes() == want, 300,
                   "the sender to load its %d static routes" % want, interval=0.25)
    relays = path.processes()
    meter = procstat.CpuMeter({**relays, "sender BIRD": sender.proc.pid,
                               "receiver BIRD": receiver.proc.pid})
    idle = procstat.wait_quiet(quiet_wait, log=ctx.step)
    load = procstat.LoadMeter()
    load.start()
    recorder = None
    if perf and relays:
        recorder = PerfRecorder(ctx, relays, "table")
        recorder.start()
    meter.start()
    sender.enable()
    t_enable = time.monotonic()

    # Established at the receiver (the sender starts its UPDATEs then too).
    deadline = t_enable + 30
    while True:
        info = receiver.info()
        if info["state"] == "Established":
            t_est = time.monotonic()
            break
        if time.monotonic() > deadline:
            raise TestFailure("%s run %d: no Established at the receiver within 30 s (state %s)"
                              % (path_name, run_index, info["state"]))
        path.check_alive()
        time.sleep(ESTABLISHED_POLL_S)

    deadline = t_est + timeout
    last = None
    while True:
        try:
            sender.control().poke()
        except Exception:
            pass
        info = receiver.info()
        got = info["routes"].get("ipv4", 0), info["routes"].get("ipv6", 0)
        if got == (n4, n6):
            t_done = time.monotonic()
            break
        if info["state"] != "Established":
            raise TestFailure("%s run %d: the receiver's session dropped (%s) at %s routes"
                              % (path_name, run_index, info["state"], got))
        now = time.monotonic()
        if now > deadline:
            raise TestFailure("%s run %d: %s of (%d, %d) routes after %.0f s"
                              % (path_name, run_index, got, n4, n6, timeout))
        if last != got:
            last = got
        time.sleep(poll_s)
    meter.stop()
    if recorder:
        recorder.stop()
    used = meter.used()
    return {
        "path": path_name,
        "run": run_index,
        "connect_s": t_est - t_enable,
        "time_s": t_done - t_est,
        "cpu": used,
        "cpu_coarse": sorted(meter.coarse),
        "idle_before": idle,
        "cpu_wait_s": meter.cpu_wait(),
        "other_cores": load.foreign_cores(sum(v for v in used.values() if v)),
        "rss_kib": meter.peak_rss(),
        "relays": list(relays),
        "perf_files": recorder.files if recorder else {},
    }


def retrying(ctx, args, once):
    """Runs one transfer; a failure is retried up to --retries times (a
    shared machine with pid_max 32768 sees PIDs reused quickly, and a stale
    kill by someone else's cleanup has ended our BIRD before). Every retry
    is announced; the last failure is raised."""
    for attempt in range(args.retries + 1):
        try:
            return once()
        except TestFailure as e:
            if attempt == args.retries:
                raise
            ctx.step("  run failed (%s); retrying (%d of %d)" % (e, attempt + 1, args.retries))
        finally:
            ctx.stop_all()


def run(ctx, args, paths, binaries, routes_file, results):
    """All runs: paths interleaved within each run (drift hits all alike).
    Processes of one run are stopped before the next starts. Results are
    appended to `results` as they come (kept if a later run fails)."""
    for r in range(1, args.runs + 1):
        for p in paths:
            ctx.step("table run %d/%d, path %s" % (r, args.runs, p))
            res = retrying(ctx, args, lambda: run_once(
                ctx, p, r, routes_file, args.ipv4, args.ipv6, binaries, args.run_timeout,
                args.poll_ms / 1000, args.quiet_wait, p in args.perf_paths))
            ctx.step("  %s: %.3f s after Established (connect %.2f s); relay CPU %s"
                     % (p, res["time_s"], res["connect_s"],
                        ", ".join("%s %.2f" % (k, res["cpu"][k] or 0) for k in res["relays"]) or "-"))
            results.append(res)
    return results
