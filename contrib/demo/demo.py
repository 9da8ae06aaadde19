#!/usr/bin/python3
"""Live demo of kbgp on loopback, as root:

  device BIRD (127.0.0.3) -> kbgp (127.0.0.1) ==TLS==> kbgp-ingest -> collector BIRD (127.0.0.2)

Starts the collector, kbgp-ingest with fresh TLS material, kbgp and a device
announcing routes; waits until the collector holds them all; prints kbgp's
processes, /admin/status and /admin/sessions, and how many routes the
collector holds from the device; then stops everything (by PID) and exits 0.
Any failure: a clear message, the logs' tails, exit 1.
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))

from kbgptest import procs  # noqa: E402
from kbgptest.errors import Interrupted, TestFailure  # noqa: E402
from kbgptest.kbgp import find_binaries  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.scenarios import DEVICE_ASN, DEVICE_IP, check_agent_processes, check_agent_stops  # noqa: E402
from kbgptest.testing import Context  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--builddir", help="where kbgp, kbgp-ingest and the workers are "
                                      "(default $KBGP_BUILDDIR, else the repo's build/ or top dir)")
    p.add_argument("--routes", type=int, default=5000, help="IPv4 /24s the device announces (default 5000)")
    p.add_argument("--routes6", type=int, default=500, help="IPv6 /48s the device announces (default 500)")
    p.add_argument("--keep", action="store_true", help="stay up until Ctrl-C (then stop cleanly)")
    return p.parse_args()


def fail(message):
    print("demo: %s" % message, file=sys.stderr, flush=True)
    return 1


def show(title, obj):
    print("\n== %s" % title)
    print(json.dumps(obj, indent=2) if not isinstance(obj, str) else obj, flush=True)


def run(ctx, args):
    topo = Topology(ctx, "kbgp")
    routes = make_routes(args.routes, args.routes6)
    device = topo.start_standard("bird", DEVICE_IP, DEVICE_ASN, routes)
    topo.wait_established(device, timeout=30)
    topo.wait_routes(device, routes, timeout=120)
    topo.check_routes(device, routes)
    agent = topo.agents[0]

    check_agent_processes(ctx, agent)  # prints them: kbgp (root) + three workers (kbgp)
    show("GET %s" % agent.url("/admin/status"), agent.status())
    show("GET %s" % agent.url("/admin/sessions"), agent.sessions())
    v4, v6 = topo.collector_counts(device)
    print("\ncollector holds %d routes from device %s (%d IPv4 + %d IPv6)\n" % (v4 + v6, device.ip, v4, v6),
          flush=True)

    if args.keep:
        print("Up until Ctrl-C. Try:\n"
              "  curl -s %s?pretty\n"
              "  curl -s %s?pretty\n"
              "  birdc -s %s show protocols all\n"
              "  birdc -s %s show route count\n"
              "  ps -o pid,ppid,user,comm --ppid %d -p %d\n"
              "Logs and configs: %s" % (agent.url("/admin/status"), agent.url("/admin/sessions/%s" % device.ip),
                                        topo.collector.ctl, device.ctl, agent.pid, agent.pid, ctx.dir), flush=True)
        try:
            while agent.proc.alive():
                time.sleep(1)
            raise TestFailure("kbgp exited with status %s" % agent.proc.exited_with())
        except (KeyboardInterrupt, Interrupted):
            print("\nstopping", flush=True)

    device.stop()
    check_agent_stops(ctx, agent)


def main():
    args = parse_args()
    if os.geteuid() != 0:
        return fail("run as root: kbgp binds its listener and drops its workers to the user 'kbgp'")
    missing = [t for t in ("bird", "birdc", "openssl", "ps") if not shutil.which(t)]
    if missing:
        return fail("missing %s: apt-get install bird2 openssl procps" % ", ".join(missing))
    binaries, looked = find_binaries(args.builddir)
    if binaries is None:
        return fail("kbgp, kbgp-ingest and the workers are not built (looked in %s); build first "
                    "(./configure && make) or pass --builddir" % ", ".join(looked))
    try:
        pwd.getpwnam("kbgp")
    except KeyError:
        return fail("the user 'kbgp' (kbgp's workers run as it) does not exist: "
                    "useradd --system --no-create-home --shell /usr/sbin/nologin kbgp")

    ns = argparse.Namespace(path="kbgp")
    ctx = Context("demo", ns, binaries)
    print("demo: binaries in %s; logs and configs in %s" % (binaries.builddir, ctx.dir), flush=True)
    def interrupted(signum, frame):
        raise Interrupted("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)
    # Ctrl-C must work even when started from a shell that ignores SIGINT
    # for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ok = False
    try:
        run(ctx, args)
        ok = True
    except TestFailure as e:
        print("demo: FAILED: %s" % e, file=sys.stderr, flush=True)
    except (KeyboardInterrupt, Interrupted) as e:
        print("demo: interrupted (%s)" % (e or "Ctrl-C"), file=sys.stderr, flush=True)
    except Exception as e:
        print("demo: FAILED: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
    finally:
        ctx.stop_all()
        procs.stop_all()
    if not ok:
        ctx.print_log_tails(40)
        print("demo: logs and configs kept in %s" % ctx.dir, file=sys.stderr, flush=True)
        return 1
    shutil.rmtree(ctx.dir, ignore_errors=True)
    print("demo: everything stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
