"""Child processes of a test: started in their own process group with output
in a log file, stopped by PID (SIGTERM, then SIGKILL after a timeout).

Every started process is remembered so that an exception, a signal or plain
interpreter exit still stops it (atexit + the runner's finally).
"""

import atexit
import ctypes
import os
import signal
import subprocess
import time

from . import sanitizers
from .errors import TestFailure

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """In the child before exec: SIGTERM when the test runner dies, even by
    SIGKILL (when no finally/atexit can run)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


_running = []  # Proc objects not yet stopped, in start order


class Proc:
    """One child process. `name` names its log file and error messages."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.popen = None
        self.returncode = None
        self.stray_group_members = False

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def start(self):
        log = open(self.log_path, "ab", buffering=0)
        log.write(("### %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(self.argv))).encode())
        try:
            # start_new_session: own session and process group, so a stray
            # descendant can be found (and killed) by the group id = our pid,
            # and a Ctrl-C on the terminal reaches only the test runner.
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True, close_fds=True,
                preexec_fn=_die_with_parent)
        except OSError as e:
            raise TestFailure("cannot start %s (%s): %s" % (self.name, self.argv[0], e)) from e
        finally:
            log.close()
        _running.append(self)
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def exited_with(self):
        """The exit status if the process has ended, else None."""
        if self.popen is None:
            return None
        return self.popen.poll()

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """Stops the process: `sig` to its PID, SIGKILL to its group after
        `timeout` seconds (times sanitizers.slowdown(): LeakSanitizer works
        at exit). Returns the exit status (negative = signal)."""
        if self.popen is None:
            return None
        if self.returncode is not None:
            return self.returncode  # stopped before
        if self in _running:
            _running.remove(self)
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout * sanitizers.slowdown())
            except subprocess.TimeoutExpired:
                _killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # The group id stays reserved while any member lives, so a member
        # found here is ours: a descendant that outlived its parent.
        stray = group_members(self.popen.pid)
        if stray:
            self.stray_group_members = True
            print("note: %s left processes %s behind in its group; killed" % (self.name, stray), flush=True)
            _killpg(self.popen.pid, signal.SIGKILL)
        self.returncode = self.popen.returncode
        return self.returncode


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stat_fields(pid):
    """(state, ppid, pgrp) of a process from /proc, or None if it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain anything.
    rest = stat[stat.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def group_members(pgid):
    """PIDs of the live (non-zombie) processes in process group `pgid`.
    Zombies do not count: where PID 1 does not reap orphans they linger."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat_fields(name)
            if f and f[2] == pgid and f[0] != "Z":
                members.append(int(name))
    return members


def stop_all(timeout=10.0):
    """Stops every process still running, newest first."""
    for p in list(reversed(_running)):
        try:
            p.stop(timeout)
        except Exception as e:  # keep stopping the others
            print("warning: stopping %s: %s" % (p.name, e), flush=True)


atexit.register(stop_all)


def pid_state(pid):
    """The one-letter state of a process from /proc, or None if it is gone."""
    f = _stat_fields(pid)
    return f[0] if f else None


def pid_alive(pid):
    """True while the process exists and is not a zombie."""
    state = pid_state(pid)
    return state is not None and state != "Z"


def process_table():
    """Every process as a dict (pid, ppid, user, comm), from `ps`."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,user:32=,comm="],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            rows.append({"pid": int(parts[0]), "ppid": int(parts[1]),
                         "user": parts[2], "comm": parts[3].strip()})
    return rows


def process_tree(root_pid):
    """`root_pid` and all its descendants (from `ps`), root first."""
    rows = process_table()
    by_parent = {}
    for r in rows:
        by_parent.setdefault(r["ppid"], []).append(r)
    tree = [r for r in rows if r["pid"] == root_pid]
    i = 0
    while i < len(tree):
        tree.extend(by_parent.get(tree[i]["pid"], []))
        i += 1
    return tree
