"""--perf: a CPU profile of each relay process while it moves the data.

One `perf record -g` per process (so each profile is that process alone,
all its threads), started just before the measured window and stopped
(SIGINT) right after it. The data files stay in the run's directory; the
summary shows, per process, where its samples fell by shared object and by
symbol. perf itself costs CPU: times measured with --perf are not the
plain numbers.
"""

import os
import signal
import subprocess
import time

FREQ = 999  # samples per second; --perf-freq sets it (a short window needs more)


class PerfRecorder:
    def __init__(self, ctx, label_pids, tag):
        self.ctx = ctx
        self.label_pids = dict(label_pids)
        self.tag = tag
        self.procs = {}
        self.files = {}

    def start(self):
        for label, pid in self.label_pids.items():
            out = self.ctx.path("perf-%s-%s.data" % (self.tag, label))
            log = open(self.ctx.path("perf-%s-%s.log" % (self.tag, label)), "wb")
            self.procs[label] = subprocess.Popen(
                ["perf", "record", "-q", "-g", "-F", str(FREQ), "-p", str(pid), "-o", out],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            self.files[label] = out
        # perf needs a moment to attach to the running process; samples
        # before that are lost (and a short run would have none).
        time.sleep(1.0)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _report(path, sort, limit, lines):
    r = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", sort, "-g", "none",
                        "--stdio", "--percent-limit", str(limit)],
                       capture_output=True, text=True)
    out = [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    return out[:lines]


def summary(files, dso_lines=6, sym_lines=15):
    """Text: per process, the top shared objects and symbols."""
    parts = []
    for label, path in files.items():
        if not os.path.exists(path):
            continue
        parts.append("== %s (%s)" % (label, path))
        parts.append("  by object:")
        parts += ["    " + l for l in _report(path, "dso", 1, dso_lines)]
        parts.append("  by symbol:")
        parts += ["    " + l for l in _report(path, "dso,sym", 0.8, sym_lines)]
    return "\n".join(parts)
