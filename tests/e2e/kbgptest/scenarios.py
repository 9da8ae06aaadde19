"""Test bodies shared by several tests."""

import json
import os
import time

from .kbgp import UUID4, WORKERS
from .routes import make_routes
from .topology import Topology

DEVICE_IP = "127.0.0.3"
DEVICE_ASN = 65003


def check_agent_status(ctx, agent, device_ip, sessions=1):
    """/admin/status, /admin/sessions and /admin/sessions/<ip> describe
    `sessions` live session(s), the one from `device_ip` among them."""
    status = agent.status()
    ctx.step("GET /admin/status:\n" + json.dumps(status, indent=2))
    ctx.check(status.get("ActiveSessions") == sessions,
              "/admin/status ActiveSessions is %r, want %d" % (status.get("ActiveSessions"), sessions))
    control = status.get("ControlStream")
    ctx.check(isinstance(control, dict) and control.get("Connected") is True,
              "/admin/status ControlStream.Connected is not true: %r" % (control,))
    # The admin re-evaluates health periodically, so /hc may lag a little.
    last = [None]

    def healthy():
        last[0] = agent.health()
        return last[0][0] == 200
    ctx.wait_until(healthy, 10, "GET /hc to answer 200 with a live session",
                   describe=lambda: "%s %s" % (last[0][0], last[0][1][:300]))
    listing = agent.sessions()
    ctx.step("GET /admin/sessions:\n" + json.dumps(listing, indent=2))
    ctx.check(listing.get("NumSessions") == sessions,
              "/admin/sessions NumSessions is %r, want %d" % (listing.get("NumSessions"), sessions))
    peers = [s.get("Peer", "") for s in listing.get("Sessions") or []]
    ctx.check(any(p.startswith(device_ip + ":") for p in peers),
              "/admin/sessions lists no session from %s: %r" % (device_ip, peers))
    detail = agent.session(device_ip)
    ctx.step("GET /admin/sessions/%s:\n%s" % (device_ip, json.dumps(detail, indent=2)))
    sid = detail.get("SessionID")
    ctx.check(isinstance(sid, str) and UUID4.match(sid),
              "/admin/sessions/%s SessionID is %r, want a v4 UUID" % (device_ip, sid))
    ctx.check(str(detail.get("Peer", "")).startswith(device_ip + ":"),
              "/admin/sessions/%s Peer is %r" % (device_ip, detail.get("Peer")))
    return status, detail


def check_agent_processes(ctx, agent):
    """`ps` shows kbgp (root) and its three workers, none of them root."""
    tree = agent.processes()
    table = "\n".join("  %7d %7d %-10s %s" % (p["pid"], p["ppid"], p["user"], p["comm"]) for p in tree)
    ctx.step("kbgp's processes (pid ppid user command):\n" + table)
    ours = [p for p in tree if p["comm"].startswith("kbgp")]
    ctx.check(len(ours) == 4, "ps shows %d kbgp processes, want 4:\n%s" % (len(ours), table))
    sup = tree[0]
    ctx.check(sup["comm"] == "kbgp" and sup["user"] == "root",
              "the supervisor should be 'kbgp' as root, is %r as %s" % (sup["comm"], sup["user"]))
    workers = sorted(p["comm"] for p in tree[1:] if p["ppid"] == sup["pid"])
    ctx.check(workers == sorted(WORKERS), "the supervisor's children are %s, want %s" % (workers, sorted(WORKERS)))
    root_workers = [p for p in tree[1:] if p["user"] == "root"]
    ctx.check(not root_workers, "workers running as root: %s" % root_workers)
    ctx.check(all(p["user"] == agent.user for p in tree[1:]),
              "workers should run as %s:\n%s" % (agent.user, table))
    # The token reaches the uplink over its IPC channel only: never a
    # worker's argv or environment.
    secret = agent.token.encode()
    for p in tree[1:]:
        for what in ("cmdline", "environ"):
            try:
                with open("/proc/%d/%s" % (p["pid"], what), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            ctx.check(secret not in data, "the API token is in the %s of %s (pid %d)" % (what, p["comm"], p["pid"]))
    ctx.step("only the supervisor runs as root; the token is in no worker's argv or environment")


def check_token_not_logged(ctx, token):
    """No log of the test (kbgp, kbgp-ingest, daemons) contains the token."""
    for f in sorted(os.listdir(ctx.dir)):
        if f.endswith(".log"):
            with open(ctx.path(f), "rb") as fh:
                ctx.check(token.encode() not in fh.read(), "the API token appears in %s" % f)
    ctx.step("the API token appears in no log")


def check_coalescing(ctx, agent, ingest, device_ip):
    """The uplink's line for the ended session (debug, JSON logs): as many
    DataRequests as kbgp-ingest received for it, and how many batches a
    steady flow made it hold for more (uplink/coalescing.h; the policy
    itself is unit-tested). A held batch that never went would have kept
    routes from the collector."""
    def ended(log, key):
        return [obj for _, obj in log.records() if obj and obj.get("message") == "session ended" and key in obj]
    # ActiveSessions drops when the listener is done; the uplink logs once
    # the stream's status is in, kbgp-ingest after closing the collector.
    ctx.wait_until(lambda: ended(agent.log, "data-requests") and ended(ingest.log, "requests"), 20,
                   "the uplink's and kbgp-ingest's 'session ended' lines (JSON logs)")
    ups = ended(agent.log, "data-requests")
    ctx.check(len(ups) == 1, "want one uplink 'session ended' line, got %d" % len(ups))
    up = ups[0]
    sent, held = int(up["data-requests"]), int(up["held"])
    got = [x for x in ended(ingest.log, "requests") if x.get("session_id") == up.get("session-id")]
    ctx.check(len(got) == 1 and int(got[0]["requests"]) == sent,
              "the uplink counted %d DataRequests, kbgp-ingest %s" % (sent, [x.get("requests") for x in got]))
    ctx.check(0 < sent and held <= sent, "uplink: %d DataRequests, %d held" % (sent, held))
    ctx.step("uplink: %d DataRequests for the session of %s (kbgp-ingest got as many), %d of them "
             "held for more (steady flow)" % (sent, device_ip, held))


def check_agent_stops(ctx, agent):
    """SIGTERM stops the supervisor and all three workers."""
    t = time.monotonic()
    status, left = agent.stop(timeout=15)
    ctx.check(not left, "workers still running after kbgp exited: pids %s" % left)
    ctx.check(status in (0, -15), "kbgp exited with status %s after SIGTERM (want 0; -9 = it had "
                                  "to be killed)" % status)
    ctx.step("kbgp and its workers stopped on SIGTERM in %.1f s (exit status %s)" % (time.monotonic() - t, status))


def relay(ctx, kind, n4, n6, routes_timeout=90, path=None, tag=""):
    """A `kind` device announces n4 + n6 routes through the path under test;
    the collector must hold exactly them with their attributes; half are
    withdrawn, the collector must follow; the device stops, the session
    must end at the collector (and at the agent)."""
    routes = make_routes(n4, n6)
    topo = Topology(ctx, path, tag)
    # Debug: the uplink's end-of-session line (check_coalescing).
    device = topo.start_standard(kind, DEVICE_IP, DEVICE_ASN, routes, agent_log_level="debug")
    topo.wait_established(device, timeout=30)

    t = time.monotonic()
    topo.wait_routes(device, routes, timeout=routes_timeout)
    ctx.step("all %d routes arrived %.1f s after Established" % (len(routes), time.monotonic() - t))
    topo.check_routes(device, routes)

    agent = topo.agents[0] if topo.path == "kbgp" else None
    if agent:
        check_agent_status(ctx, agent, device.ip)
        check_agent_processes(ctx, agent)

    keep = [r for r in routes if r.index % 2 == 0]
    t = time.monotonic()
    ctx.step("device withdraws %d of %d routes (every other one)" % (len(routes) - len(keep), len(routes)))
    device.set_routes(keep)
    topo.wait_routes(device, keep, timeout=routes_timeout)
    ctx.step("withdrawals arrived in %.1f s" % (time.monotonic() - t))
    topo.check_routes(device, keep)
    if agent:
        st = agent.status()
        ctx.check(st.get("ActiveSessions") == 1, "after the withdrawals ActiveSessions is %r"
                  % st.get("ActiveSessions"))

    ctx.step("device stops; its session must end at the collector")
    device.stop()

    def ended():
        info = topo.collector.peer_info(device.ip)
        return info["state"] != "Established" and not any(info["routes"].values())
    ctx.wait_until(ended, 20, "the collector to drop the session of %s and its routes" % device.ip,
                   describe=lambda: str(topo.collector.peer_info(device.ip)))
    if agent:
        ctx.wait_until(lambda: agent.status().get("ActiveSessions") == 0, 20,
                       "kbgp's ActiveSessions to drop to 0", describe=lambda: str(agent.status()))
        ctx.step("collector and kbgp saw the session end")
        check_coalescing(ctx, agent, topo.ingest, device.ip)
        check_agent_stops(ctx, agent)
        check_token_not_logged(ctx, agent.token)
    else:
        ctx.step("collector saw the session end")
