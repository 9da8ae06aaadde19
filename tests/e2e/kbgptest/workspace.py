"""What the harness's daemon classes (bird.Bird, kbgp.Ingest, kbgp.Agent)
expect of their `ctx`: a directory for files and logs, processes spawned
with a log each (stopped later by PID), ports and waits. The e2e tests'
Context (testing.py) and the benchmarks' BenchContext (bench/relaybench)
build on it; each adds its own progress output (step) and cleanup."""

import os
import time

from . import net, procs


class Workspace:
    def __init__(self, directory):
        self.dir = directory
        self.procs = []
        self.t0 = time.monotonic()

    def path(self, name):
        return os.path.join(self.dir, name)

    def log_path(self, name):
        return self.path(name + ".log")

    def spawn(self, name, argv, env=None):
        p = procs.Proc(name, argv, self.log_path(name), env=env, cwd=self.dir)
        self.procs.append(p)
        return p.start()

    def free_port(self, addr="127.0.0.1"):
        return net.free_port(addr)

    def wait_until(self, cond, timeout, what, **kw):
        return net.wait_until(cond, timeout, what, **kw)

    def elapsed(self):
        return time.monotonic() - self.t0
