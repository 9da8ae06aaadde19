"""Where one benchmark lives: a temp dir, the processes it started (stopped
by PID in reverse order), ports and progress output.

It offers what the e2e harness's classes (kbgptest.bird.Bird, kbgp.Ingest,
kbgp.Agent) expect of their `ctx`: path(), log_path(), spawn(),
free_port(), wait_until(), step().
"""

import os
import sys

from kbgptest.workspace import Workspace


class BenchContext(Workspace):
    def __init__(self, root, verbose=False):
        super().__init__(root)
        self.root = root
        self.verbose = verbose

    def subdir(self, name):
        """A fresh directory for one path run: the daemons' files of
        different runs never mix. Readable by the unprivileged kbgp workers
        (they read the CA)."""
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self.dir = d
        return d

    def step(self, message):
        print("[%7.1fs] %s" % (self.elapsed(), message), file=sys.stderr, flush=True)

    def debug(self, message):
        if self.verbose:
            self.step(message)

    def stop_all(self):
        """Stops every process this context started, newest first, by PID
        (SIGTERM, then SIGKILL to its process group after a timeout)."""
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop(timeout=10)
            except Exception as e:  # keep stopping the others
                errors.append("%s: %s" % (p.name, e))
        self.procs = []
        for e in errors:
            print("warning: stopping %s" % e, file=sys.stderr, flush=True)
