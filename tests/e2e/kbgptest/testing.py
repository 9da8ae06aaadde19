"""The runner every tests/e2e/test_*.py uses: gating (KBGP_E2E=1, root,
binaries), a per-test temp dir, cleanup of every process, log tails on
failure, and the Automake exit codes (0 pass, 1 fail, 77 skip)."""

import argparse
import os
import pwd
import shutil
import signal
import sys
import tempfile
import traceback

from . import sanitizers
from .errors import Interrupted, SkipTest, TestFailure
from .kbgp import find_binaries
from .workspace import Workspace

PASS, FAIL, SKIP = 0, 1, 77


class Context(Workspace):
    """What a test gets: its temp dir, process spawning with per-process
    log files, ports, waits (workspace.py), progress output, checks."""

    def __init__(self, name, args, binaries):
        self.name = name
        self.args = args
        self.path_kind = args.path  # "kbgp" or "direct"
        self.binaries = binaries
        super().__init__(tempfile.mkdtemp(prefix="kbgp-e2e-%s-" % name))
        # Unprivileged workers may need to read files here (the CA).
        os.chmod(self.dir, 0o755)

    def step(self, message):
        print("[%6.1fs] %s" % (self.elapsed(), message), flush=True)

    def check(self, cond, message):
        if not cond:
            raise TestFailure(message)

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:
                print("warning: stopping %s: %s" % (p.name, e), flush=True)

    def print_log_tails(self, lines=60):
        names = sorted(f for f in os.listdir(self.dir) if f.endswith(".log"))
        for f in names:
            path = self.path(f)
            with open(path, "rb") as fh:
                data = fh.read().decode("utf-8", "replace").splitlines()
            print("----- %s (last %d of %d lines) -----" % (path, min(lines, len(data)), len(data)))
            for line in data[-lines:]:
                print("  " + line[:400])
        sys.stdout.flush()


def _parse_args(description, argv):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--path", choices=("kbgp", "direct"), default=os.environ.get("KBGP_E2E_PATH", "kbgp"),
                   help="device -> kbgp -> kbgp-ingest -> collector (default), or device -> collector "
                        "directly (proves the harness without the binaries); env KBGP_E2E_PATH")
    p.add_argument("--builddir", help="where kbgp and kbgp-ingest are (default $KBGP_BUILDDIR, "
                                      "else the repo's build/)")
    p.add_argument("--keep", action="store_true", default=os.environ.get("KBGP_E2E_KEEP") == "1",
                   help="keep the temp dir even when the test passes (env KBGP_E2E_KEEP=1)")
    p.add_argument("--budget", type=int, default=int(os.environ.get("KBGP_E2E_BUDGET", "240")),
                   help="abort the test after this many seconds (default 240), times "
                        "$KBGP_TEST_SLOWDOWN (3 for a sanitizer build)")
    return p.parse_args(argv)


def _raise_interrupted(signum, frame):
    raise Interrupted("signal %d" % signum)


def _watchdog(signum, frame):
    raise Interrupted("the test ran past its time budget")


def _missing_tools(tools):
    return [t for t in tools if not (shutil.which(t) or (os.path.isabs(t) and os.access(t, os.X_OK)))]


def main(test, name, description, needs_kbgp_path=True, tools=("bird", "birdc", "openssl", "ps"),
         path=None, argv=None):
    """Runs test(ctx) and returns the exit code. `needs_kbgp_path`: the test
    is meaningless on the direct path; `path` fixes the path regardless of
    --path (the harness self-test is always "direct")."""
    args = _parse_args(description, sys.argv[1:] if argv is None else argv)
    if path:
        args.path = path
    sys.stdout.reconfigure(line_buffering=True)

    def skip(why):
        print("SKIP: %s: %s" % (name, why), flush=True)
        return SKIP

    if os.environ.get("KBGP_E2E") != "1":
        return skip("end-to-end tests run only with KBGP_E2E=1 (they start real BGP daemons)")
    if os.geteuid() != 0:
        return skip("needs root (kbgp drops its workers to another user)")
    if args.path == "direct" and needs_kbgp_path:
        return skip("this test is only meaningful through kbgp")
    missing = _missing_tools(tools)
    if missing:
        print("FAIL: %s: missing tools: %s (apt-get install bird2 frr openssl procps)"
              % (name, ", ".join(missing)), flush=True)
        return FAIL
    binaries = None
    if args.path == "kbgp":
        binaries, looked = find_binaries(args.builddir)
        if binaries is None:
            return skip("kbgp, kbgp-ingest and the workers are not built (looked in %s)" % ", ".join(looked))
        try:
            pwd.getpwnam("kbgp")
        except KeyError:
            print("FAIL: %s: the user 'kbgp' the workers run as does not exist: "
                  "useradd --system --no-create-home --shell /usr/sbin/nologin kbgp" % name, flush=True)
            return FAIL

    if binaries:
        sanitizers.use_build(binaries.builddir)
    ctx = Context(name, args, binaries)
    print("%s: path=%s, temp dir %s%s" % (name, args.path, ctx.dir,
                                         ", binaries in %s" % binaries.builddir if binaries else ""), flush=True)
    old = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(int(args.budget * sanitizers.slowdown()))
    result = FAIL
    try:
        test(ctx)
        result = PASS
    except SkipTest as e:
        result = SKIP
        print("SKIP: %s: %s" % (name, e), flush=True)
    except TestFailure as e:
        print("FAIL: %s: %s" % (name, e), flush=True)
    except KeyboardInterrupt:
        print("FAIL: %s: interrupted" % name, flush=True)
    except Interrupted as e:
        print("FAIL: %s: %s" % (name, e), flush=True)
    except Exception:
        print("FAIL: %s: error in the test itself:" % name, flush=True)
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.alarm(0)
        try:
            ctx.stop_all()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
    # Checked for every test and outcome, once every process has stopped
    # (LeakSanitizer reports at exit): see sanitizers.py.
    reports = sanitizers.reports_in(ctx.dir)
    for path, excerpt in reports:
        print("----- sanitizer report in %s -----\n%s" % (path, excerpt), flush=True)
    if reports:
        print("FAIL: %s: %d sanitizer report(s) in the process logs (above)" % (name, len(reports)), flush=True)
        result = FAIL
    if result == FAIL:
        ctx.print_log_tails()
        print("FAIL: %s after %.1f s; logs and configs kept in %s" % (name, ctx.elapsed(), ctx.dir), flush=True)
    elif result == PASS:
        print("PASS: %s in %.1f s" % (name, ctx.elapsed()), flush=True)
    if result != FAIL and not args.keep:
        shutil.rmtree(ctx.dir, ignore_errors=True)
    elif result != FAIL:
        print("temp dir kept: %s" % ctx.dir, flush=True)
    return result
