#!/usr/bin/python3
"""Bad input from devices, end to end.

Two BIRD devices (127.0.0.3, .4; 1,000 IPv4 routes each) relay through kbgp
to the collector BIRD and must keep exactly their routes, in one continuous
session at both ends, while raw sockets from other 127.0.0.x addresses
(registered at kbgp-ingest, their "collector" a sink that swallows
everything) send, each from its own address:

- a wrong marker, a length below 19, lengths above 4096 (4097 and 65535;
  no Extended Message was negotiated), a KEEPALIVE of 20 bytes, type 0:
  the session is reset at once, the agent logs "malformed BGP framing
  from device" with the reason and the device's peer-addr, and
  kbgp_framing_errors_by_reason_total{reason} / /admin/status
  Counters.FramingErrorsByReason count it;
- an OPEN with hold time 3, then the first 10 bytes of a header and
  silence (slowloris): the session ends after the hold time (not before),
  reason incomplete_timeout;
- a device that writes every byte in its own send() (127.0.0.21, a real
  peer of the collector): OPEN, KEEPALIVE and an UPDATE reassembled: the
  collector reaches Established and holds the announced prefix;
- a device that connects and never sends a byte (127.0.0.29, a real peer
  of the collector, whose startup hold time for it is 6 s): the
  collector's OPEN reaches it through kbgp; when the collector gives up
  waiting for its OPEN, its NOTIFICATION (Hold Timer Expired) reaches the
  device too, the agent closes the connection and forgets the session;
  not a framing error (the agent itself has no timer for a silence before
  the first byte: the BGP peer's OpenSent hold timer covers it);
- 10,000 connections opened and closed (half FIN, half RST) from
  127.0.0.30: the agent survives, all four processes end with the
  descriptors they had, the time is reported.

Throughout: no worker restarts, the good devices' routes stay exact.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import badinput, resilience  # noqa: E402
from kbgptest.bgpwire import BadFraming, MessageSplitter  # noqa: E402
from kbgptest.resilience import bgp_open  # noqa: E402
from kbgptest.topology import COLLECTOR_IP, Topology  # noqa: E402

GOOD = [("127.0.0.3", 65003, 0), ("127.0.0.4", 65004, 1)]
BYTEWISE = ("127.0.0.21", 65021)
SILENT = ("127.0.0.29", 65029)
SILENT_HOLD = 6  # the collector's startup hold time for it (BIRD's default: 240 s)
RAW = {  # case -> device address
    "bad_marker": "127.0.0.22",
    "length_below_minimum": "127.0.0.23",
    "length_above_maximum": "127.0.0.24",
    "length_65535": "127.0.0.25",
    "short_for_type": "127.0.0.26",
    "type_zero": "127.0.0.27",
    "incomplete_timeout": "127.0.0.28",
}
CHURN_IP = "127.0.0.30"
CHURN_COUNT = int(os.environ.get("KBGP_E2E_CHURN", "10000"))
ROUTES = 1000


def routes_for(k):
    return resilience.churn_pool(ROUTES, 0, first4=ROUTES * k)


def test(ctx):
    topo = Topology(ctx)
    collector = topo.start_collector([(ip, asn) for ip, asn, _ in GOOD] + [BYTEWISE] +
                                     [SILENT + ("startup hold time %d;" % SILENT_HOLD,)])
    sink = badinput.Sink(COLLECTOR_IP, ctx.free_port(COLLECTOR_IP)).start()
    try:
        run(ctx, topo, collector, sink)
    finally:
        sink.stop()


def run(ctx, topo, collector, sink):
    sink_addr = "%s:%d" % (sink.ip, sink.port)
    registry = [ip for ip, _, _ in GOOD] + [BYTEWISE[0], SILENT[0]]
    registry += [{"device_ip": ip, "collector": sink_addr} for ip in list(RAW.values()) + [CHURN_IP]]
    topo.start_ingest(registry)
    agent = topo.start_agent()
    ctx.step("raw devices %s and %s go to a sink at %s that swallows their bytes"
             % (", ".join(RAW.values()), CHURN_IP, sink_addr))

    devices, pools, logs = badinput.start_good_devices(ctx, topo, collector, GOOD, routes_for)
    restarts0 = badinput.restarts(agent)

    def good_routes_unchanged(after):
        for dev, pool in zip(devices, pools):
            topo.check_routes(dev, pool)
        r = badinput.restarts(agent)
        ctx.check(r == restarts0, "worker restarts changed after %s: %s -> %s" % (after, restarts0, r))
        ctx.step("after %s: both good devices still hold exactly their %d routes at the collector, "
                 "no worker restarted" % (after, ROUTES))

    framing_cases(ctx, agent)
    good_routes_unchanged("the framing errors")
    slowloris(ctx, agent)
    good_routes_unchanged("the slowloris")
    bytewise(ctx, topo, agent, collector)
    good_routes_unchanged("the one-byte writes")
    silent_device(ctx, agent)
    good_routes_unchanged("the silent device")
    churn(ctx, agent, sink)
    good_routes_unchanged("%d connections opened and closed" % CHURN_COUNT)
    for log, what in logs:
        log.check_continuous(ctx, what)
    ctx.step("the good devices' sessions never dropped, at either end")


def expect_framing_error(ctx, agent, ip, reason, payload, since, timeout=10):
    """Sends `payload` from `ip`; the agent must reset the connection, log
    the reason with the device's address and count it."""
    before = badinput.counters(agent)
    s = badinput.connect_from(ip, agent.listen_port)
    t0 = time.monotonic()
    s.sendall(payload)
    how, secs = badinput.wait_closed(s, timeout)
    s.close()
    ctx.check(how is not None, "%s: the agent kept the connection from %s open for %.0f s after %r"
              % (reason, ip, secs, payload[:24]))
    line, _ = badinput.check_framing_error_reported(ctx, agent, ip, reason, since, before)
    return how, time.monotonic() - t0, line


def framing_cases(ctx, agent):
    H = badinput.header
    cases = [
        ("bad_marker", RAW["bad_marker"], b"\xff" * 15 + b"\x00" + b"\x00\x13\x04"),
        ("length_below_minimum", RAW["length_below_minimum"], H(18, 4)),
        ("length_above_maximum", RAW["length_above_maximum"], H(4097, 2) + b"\x00" * 64),
        ("length_above_maximum", RAW["length_65535"], H(65535, 2) + b"\x00" * 64),
        ("short_for_type", RAW["short_for_type"], H(20, 4) + b"\x00"),
        ("type_zero", RAW["type_zero"], H(19, 0)),
    ]
    for reason, ip, payload in cases:
        since = agent.log.mark()
        how, secs, line = expect_framing_error(ctx, agent, ip, reason, payload, since)
        ctx.step("%-21s from %s: connection %s after %.2f s; logged: %s"
                 % (reason, ip, how, secs, line.strip()[:220]))


def slowloris(ctx, agent):
    ip = RAW["incomplete_timeout"]
    hold = 3
    since = agent.log.mark()
    before = badinput.counters(agent)
    s = badinput.connect_from(ip, agent.listen_port)
    s.sendall(bgp_open(65028, ip, hold) + badinput.header(45, 2)[:10])
    t0 = time.monotonic()
    how, secs = badinput.wait_closed(s, 2.5)
    ctx.check(how is None, "slowloris: the agent ended the session after %.1f s, before the device's "
              "hold time of %d s" % (secs, hold))
    how, secs = badinput.wait_closed(s, 10)
    s.close()
    waited = time.monotonic() - t0
    ctx.check(how is not None, "slowloris: a header left unfinished for %.0f s (hold time %d s) still "
              "holds its session" % (waited, hold))
    ctx.wait_until(lambda: agent.log.find("device left a BGP message unfinished too long", since=since),
                   5, "the log line about the unfinished message")
    ctx.wait_until(lambda: any(('"peer-addr":"%s:' % ip) in l.replace(" ", "") for l in
                               agent.log.find("malformed BGP framing from device", since=since,
                                              reason="incomplete_timeout")),
                   5, "'malformed BGP framing from device' with reason incomplete_timeout for %s" % ip)
    c = badinput.counters(agent)
    ctx.check(c["FramingErrorsByReason"]["incomplete_timeout"] ==
              before["FramingErrorsByReason"]["incomplete_timeout"] + 1,
              "FramingErrorsByReason.incomplete_timeout did not grow by one: %s" % c["FramingErrorsByReason"])
    ctx.step("slowloris from %s (OPEN with hold time %d s, then 10 header bytes): still open at 2.5 s, "
             "reset %.1f s after the partial header (%s)" % (ip, hold, waited, how))


def bytewise(ctx, topo, agent, collector):
    ip, asn = BYTEWISE
    update = badinput.bgp_update_v4("10.250.7.0", 24, asn, ip)
    speaker = badinput.ByteWiseSpeaker(ip, asn, agent.listen_port).start(update=update)
    try:
        ctx.wait_until(lambda: speaker.established.is_set() and
                       collector.peer_info(ip)["state"] == "Established", 30,
                       "the one-byte-writes device %s to reach Established at the collector" % ip,
                       describe=lambda: "device established %s, collector %s" % (
                           speaker.established.is_set(), collector.peer_info(ip)))
        ctx.wait_until(lambda: "10.250.7.0/24" in collector.peer_routes(ip), 20,
                       "the collector to hold 10.250.7.0/24 from %s" % ip, poke=collector.poke)
        time.sleep(2)  # a few keepalives, byte by byte, too
        ctx.check(not speaker.closed.is_set(), "the one-byte-writes session was closed")
        ctx.check(collector.peer_info(ip)["state"] == "Established", "the collector lost %s" % ip)
        got = collector.peer_routes(ip)
        ctx.check(set(got) == {"10.250.7.0/24"}, "collector's routes from %s: %s" % (ip, sorted(got)))
        ctx.step("device %s wrote OPEN, KEEPALIVE, an UPDATE and keepalives one byte per send() "
                 "(%d sends): Established at the collector, which holds exactly 10.250.7.0/24 from it"
                 % (ip, speaker.bytes_written))
    finally:
        speaker.close()


def read_messages(sock, timeout):
    """BGP messages from `sock` until the peer closes: ([(type, body,
    monotonic arrival time)], "eof"|"reset"), or (messages, None) when still
    open after `timeout`, or (messages + [(None, the rest, time)], "bad
    framing")."""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    splitter, messages = MessageSplitter(), []
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return messages, "reset"
        if not data:
            return messages, "eof"
        try:
            whole = splitter.feed(data)
        except BadFraming:
            return messages + [(None, splitter.pending, time.monotonic())], "bad framing"
        now = time.monotonic()
        messages += [(t, m[19:], now) for t, m in whole]
    return messages, None


def silent_device(ctx, agent):
    ip = SILENT[0]
    before = badinput.counters(agent)
    s = badinput.connect_from(ip, agent.listen_port)
    t0 = time.monotonic()
    try:
        messages, how = read_messages(s, SILENT_HOLD + 20)
    finally:
        s.close()
    closed_at = time.monotonic()
    waited = closed_at - t0
    types = [t for t, _, _ in messages]
    ctx.check(how is not None, "silent device: its connection is still open %.0f s after it connected, "
              "though the collector's startup hold time is %d s" % (waited, SILENT_HOLD))
    ctx.check(types[:1] == [1], "silent device: the first message through kbgp is not the collector's "
              "OPEN: types %s" % types)
    # BIRD starts its timers shortened by a random part of up to a quarter
    # (RFC 4271, 10): the OpenSent hold timer of 6 s runs 4.5 to 6 s from
    # its OPEN, which is when the device got it (plus a hop on loopback).
    after_open = closed_at - messages[0][2] if messages else 0.0
    ctx.check(after_open >= 0.75 * SILENT_HOLD - 0.5,
              "silent device: the connection ended %.1f s after the collector's OPEN reached it, before "
              "the collector's startup hold time of %d s (less at most a quarter) ran out"
              % (after_open, SILENT_HOLD))
    notification = [body for t, body, _ in messages if t == 3]
    ctx.check(notification and notification[-1][:1] == b"\x04",
              "silent device: no NOTIFICATION Hold Timer Expired (code 4) from the collector before the "
              "close: messages %s" % [(t, b[:2].hex()) for t, b, _ in messages])

    def forgotten():
        return not any(str(x.get("Peer", "")).startswith(ip + ":")
                       for x in agent.sessions().get("Sessions") or [])
    ctx.wait_until(forgotten, 10, "the agent to forget the silent device's session",
                   describe=lambda: str(agent.sessions()))
    after = badinput.counters(agent)
    ctx.check(after["FramingErrorsByReason"] == before["FramingErrorsByReason"],
              "silent device counted as a framing error: %s -> %s"
              % (before["FramingErrorsByReason"], after["FramingErrorsByReason"]))
    ctx.step("silent device %s: got the collector's OPEN through kbgp %.1f s after it connected, then "
             "%.1f s later its NOTIFICATION (Hold Timer Expired) and %s; the agent forgot the session, "
             "no framing error counted" % (ip, waited - after_open, after_open, how))


def listen_drops():
    """The kernel's TcpExt ListenDrops (/proc/net/netstat): handshakes it
    completed for a listener but threw away, e.g. with the accept queue
    full. The client's connect() succeeded; the agent never saw them."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines, lines[1:]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:]))).get("ListenDrops", 0)
    return 0


def churn(ctx, agent, sink):
    base_active = len(GOOD)
    ctx.wait_until(lambda: agent.status()["ActiveSessions"] == base_active and
                   agent.status()["Counters"]["DataStreamsOpen"] == base_active, 15,
                   "only the good devices' sessions to be left before the churn")
    fds0 = badinput.fd_counts(agent)
    c0 = badinput.counters(agent)
    drops0 = listen_drops()
    ctx.step("before: %d active sessions, descriptors %s" % (base_active, fds0))
    since = agent.log.mark()
    errors = []
    threads = 8
    per = CHURN_COUNT // threads

    def worker(n, k):
        for i in range(n):
            try:
                s = badinput.connect_from(CHURN_IP, agent.listen_port, timeout=10)
                if (i + k) % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError as e:
                errors.append(str(e))
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(per, k)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    opened = time.monotonic() - t0
    ctx.check(len(errors) < CHURN_COUNT // 100, "%d of %d connections failed, e.g. %s"
              % (len(errors), CHURN_COUNT, errors[:3]))
    done = per * threads - len(errors)

    # While the supervisor pauses accepting for a slow worker (a sanitizer
    # build) the listen queue can overflow: the kernel then drops a
    # connection the client saw succeed, and the agent never accepts it.
    want_handled = c0["ConnectionsAccepted"] + c0["ConnectionsRejected"] + done

    def dropped():
        return listen_drops() - drops0

    def drained():
        st = agent.status()
        c = st["Counters"]
        return st["ActiveSessions"] == base_active and \
            c["ConnectionsAccepted"] + c["ConnectionsRejected"] + dropped() >= want_handled and \
            c["DataStreamsOpen"] == c0["DataStreamsOpen"]

    def describe():
        st = agent.status()
        counters = {k: st["Counters"][k] for k in
                    ("ConnectionsAccepted", "ConnectionsRejected", "SessionsClosed", "DataStreamsOpen")}
        sessions = agent.sessions().get("Sessions") or []
        return "ActiveSessions %s (want %d), counters %s (accepted + rejected + kernel listen drops %d " \
            "wanted >= %d, streams %d); sessions: %s" % (
                st["ActiveSessions"], base_active, counters, dropped(), want_handled,
                c0["DataStreamsOpen"], sessions[:6])
    ctx.wait_until(drained, 120, "every churned session to end", interval=0.5, describe=describe)
    total = time.monotonic() - t0
    seen = [None]

    def fds_back():
        seen[0] = badinput.fd_counts(agent)
        return seen[0] == fds0
    ctx.wait_until(fds_back, 30, "the agent's descriptors to return to %s" % fds0, interval=0.5,
                   describe=lambda: str(seen[0]))
    c = badinput.counters(agent)
    ctx.check(agent.proc.alive(), "kbgp exited with status %s" % agent.proc.exited_with())
    # A flood once made the supervisor kill the uplink ("cannot hand a
    # session to a worker"): no error may be logged at all.
    bad = [line for line, obj in agent.log.records(since) if obj and obj.get("level") == "error"]
    ctx.check(not bad, "%d error lines logged during the churn, e.g.:\n%s" % (len(bad), "\n".join(bad[:3])))
    paused = agent.log.find("a worker is slow to take new sessions", since=since)
    ctx.step("%d connections opened and closed from %s (half FIN, half RST) in %.1f s; all sessions "
             "ended %.1f s after the first; accepted +%d, rejected +%d, denied +%d, dropped by the kernel's "
             "full listen queue %d; the sink saw %d collector connections; descriptors back to %s; no error "
             "logged (%d lines about accepting paused for a slow worker)"
             % (done, CHURN_IP, opened, total, c["ConnectionsAccepted"] - c0["ConnectionsAccepted"],
                c["ConnectionsRejected"] - c0["ConnectionsRejected"],
                c["ConnectionsDenied"] - c0["ConnectionsDenied"], dropped(), sink.accepted,
                seen[0], len(paused)))


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_bad_device", __doc__))
