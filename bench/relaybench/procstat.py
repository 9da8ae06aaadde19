"""CPU time and peak memory of processes, from /proc.

/proc/PID/stat fields 14 and 15 (utime, stime) of a thread-group leader
sum all its threads, so one read covers gRPC's thread pools too. VmHWM in
/proc/PID/status is the peak resident set size of the process so far."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of `pid` in seconds, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_kib(pid):
    """VmHWM of `pid` in KiB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid):
    """PIDs whose parent is `pid`."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append(int(name))
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


class CpuMeter:
    """CPU seconds of named processes between start() and stop()."""

    def __init__(self, procs):
        self.procs = dict(procs)  # label -> pid
        self.before = {}
        self.after = {}
        self.wait_before = {}
        self.wait_after = {}
        self.threads_before = {}
        self.threads_after = {}
        self.coarse = set()  # labels measured in clock ticks only (see used())

    def start(self):
        self.before = {k: cpu_seconds(p) for k, p in self.procs.items()}
        self.threads_before = {k: thread_run_ns(p) for k, p in self.procs.items()}
        self.wait_before = {k: run_delay_seconds(p) for k, p in self.procs.items()}

    def stop(self):
        self.after = {k: cpu_seconds(p) for k, p in self.procs.items()}
        self.threads_after = {k: thread_run_ns(p) for k, p in self.procs.items()}
        self.wait_after = {k: run_delay_seconds(p) for k, p in self.procs.items()}

    def cpu_wait(self):
        """Seconds the metered processes together spent waiting for a CPU
        (runnable, not running) between start() and stop()."""
        total = 0.0
        for k in self.procs:
            b, a = self.wait_before.get(k), self.wait_after.get(k)
            if a is not None:
                total += a - (b or 0.0)
        return total

    def used(self):
        """CPU seconds per label. From each thread's nanosecond run time
        (schedstat): /proc/PID/stat counts in clock ticks (10 ms), too
        coarse when a relay uses ~0.1 s and four processes are added up.
        A thread that was there at start() and gone at stop() took its run
        time along, and one born and gone in between was never seen (the
        ticks then exceed the sum by more than their rounding): then the
        process falls back to clock ticks (listed in `coarse`). A label
        whose start() reading is 0.0 (a process started since) counts from
        its birth."""
        out = {}
        self.coarse = set()
        for k in self.procs:
            tb, ta = self.threads_before.get(k), self.threads_after.get(k)
            b, a = self.before.get(k), self.after.get(k)
            ticks = (a - b) if a is not None and b is not None else None
            precise = None
            if ta is not None and (tb is None or set(tb) <= set(ta)) and (tb is not None or b == 0.0):
                precise = sum(ns - (tb or {}).get(tid, 0) for tid, ns in ta.items()) / 1e9
            # A thread born and ended inside the window is in neither
            # snapshot: then the ticks (which include it) exceed the sum by
            # more than their rounding, one tick per thread and process.
            slack = (len(ta or ()) + 1) / CLK_TCK
            if precise is not None and (ticks is None or ticks - precise <= slack):
                out[k] = precise
            else:
                out[k] = ticks
                if ticks is not None:
                    self.coarse.add(k)
        return out

    def peak_rss(self):
        return {k: peak_rss_kib(p) for k, p in self.procs.items()}


def system_cpu_seconds():
    """CPU seconds every CPU of the machine spent busy so far (all of
    /proc/stat's first line but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already inside user.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / CLK_TCK


def self_cpu_seconds():
    return cpu_seconds(os.getpid())


class LoadMeter:
    """How much CPU other programs used while we measured: the machine's
    busy time minus that of the processes we meter (and of this script).
    The machine may be shared; a run during someone's compile is not a
    measurement of the relay."""

    def __init__(self):
        self.t0 = self.sys0 = self.self0 = None

    def start(self):
        import time
        self.t0 = time.monotonic()
        self.sys0 = system_cpu_seconds()
        self.self0 = self_cpu_seconds()

    def foreign_cores(self, our_cpu_seconds):
        """Average number of cores busy with other work since start()."""
        import time
        elapsed = time.monotonic() - self.t0
        busy = system_cpu_seconds() - self.sys0
        ours = our_cpu_seconds + (self_cpu_seconds() - self.self0)
        return max(0.0, busy - ours) / elapsed if elapsed > 0 else 0.0


def wait_quiet(max_wait, threshold=0.15, sample=1.0, log=None):
    """Waits until the machine's busy cores stay below `threshold` for one
    `sample` period, at most `max_wait` seconds. Returns the last busy
    level seen."""
    import time
    if max_wait <= 0:
        return None
    deadline = time.monotonic() + max_wait
    said = False
    while True:
        a = system_cpu_seconds()
        time.sleep(sample)
        level = (system_cpu_seconds() - a) / sample
        if level < threshold or time.monotonic() >= deadline:
            return level
        if log and not said:
            log("machine busy (%.2f cores in use by other programs); waiting up to %.0f s for it to calm down"
                % (level, max_wait))
            said = True


def context_switches(pid):
    """Voluntary + involuntary context switches of all live threads of
    `pid` (threads that exited are not counted), or None."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def thread_count(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return None


def thread_schedstat(pid, field):
    """{tid: value} of one field of /proc/PID/task/TID/schedstat for the
    live threads of `pid` (0: nanoseconds on a CPU; 1: nanoseconds runnable
    but waiting for one), or None."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    out = {}
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[tid] = int(f.read().split()[field])
        except (OSError, IndexError, ValueError):
            continue
    return out or None


def thread_run_ns(pid):
    """{tid: nanoseconds on a CPU} of the live threads of `pid`, or None."""
    return thread_schedstat(pid, 0)


def run_delay_seconds(pid):
    """Time the live threads of `pid` spent runnable but waiting for a CPU,
    or None."""
    waits = thread_schedstat(pid, 1)
    return sum(waits.values()) / 1e9 if waits is not None else None
