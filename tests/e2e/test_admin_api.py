#!/usr/bin/python3
"""The status API of a live agent, endpoint by endpoint, against the
vendor's documented field names (kbgp-vendor-doc.md) and our additions:

1. /hc: "ok" (200) with a live Control stream and workers; "initializing"
   (503) at an agent whose backend is not there yet; "failing" (503) once
   the backend of a running agent goes away, "ok" again when it is back;
2. /admin/status: InstanceID, ControlStream{Connected,Since,DurationMs,
   MessagesRx}, Heartbeats{LastTx,MsSinceLastTx,LastTxRTTMs,LastRx,
   MsSinceLastRx}, ActiveSessions, Config{Listeners,MD5Enabled,
   MD5Interface,ProxyTarget,APIEmail,SiteID} with the values the agent was
   started with, and the deny-list (DenyList[{Device,Until,RemainingMs}])
   holding the unknown device that was refused;
3. /admin/sessions: NumSessions, Sessions[{Peer,Time,DurationMs,Connected}]
   and per session the device's ASN and router id from its OPEN, messages
   and bytes each way;
4. /admin/sessions/<ip>: Peer, ConnectedSince, ConnectedDurationMs,
   SessionID, ServerMetadata (the backend's initial metadata), and the same
   per-session figures; the figures grow as the device sends more;
5. ?pretty indents; unknown paths 404 JSON, other methods 405 with Allow,
   malformed requests 400, a device without a session 404; a client that
   connects and sends nothing does not hold up anyone else.

/metrics against promtool is tests/e2e/test_metrics.py.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import datetime
import json
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.kbgp import EMAIL, UUID4, Agent  # noqa: E402
from kbgptest.net import http_get  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import AGENT_IP, Topology  # noqa: E402

DEVICE, DEVICE_ASN = "127.0.0.3", 65003
UNKNOWN, UNKNOWN_ASN = "127.0.0.9", 65009
DENY_TEXT = "Deny-listed an INVALID / UNKNOWN device"
# RFC 3339 with nanoseconds in UTC, as Go prints time.Time (the vendor's agent).
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def keys(obj):
    return list(obj.keys())


def parse_time(text):
    return datetime.datetime.strptime(text[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def raw_request(port, data, timeout=5):
    """Sends raw bytes to the status API; returns (status code, body)."""
    with socket.create_connection((AGENT_IP, port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(m.group(1)) if m else 0), head.decode("latin-1"), body.decode("utf-8", "replace")


def check_hc(ctx, agent, want_status, want_code):
    code, body = agent.health()
    try:
        doc = json.loads(body)
    except ValueError:
        raise kbgptest.TestFailure("/hc is not JSON (%s): %s" % (code, body[:300]))
    ok = code == want_code and doc.get("status") == want_status
    return ok, code, doc


def wait_hc(ctx, agent, want_status, want_code, timeout):
    seen = [None]

    def cond():
        ok, code, doc = check_hc(ctx, agent, want_status, want_code)
        seen[0] = (code, doc)
        return ok
    ctx.wait_until(cond, timeout, "%s's /hc to say %r (%d)" % (agent.name, want_status, want_code),
                   describe=lambda: str(seen[0]))
    code, doc = seen[0]
    ctx.check(keys(doc)[:2] == ["timestamp", "status"], "/hc keys are %s, want timestamp, status first"
              % keys(doc))
    ctx.check(TIME.match(doc["timestamp"]), "/hc timestamp %r is not RFC 3339 with ns" % doc["timestamp"])
    return doc


def check_status(ctx, agent, device):
    st = agent.status()
    ctx.step("GET /admin/status:\n" + json.dumps(st, indent=2))
    ctx.check(keys(st)[:5] == ["InstanceID", "ControlStream", "Heartbeats", "ActiveSessions", "Config"],
              "/admin/status starts with %s, want the vendor's InstanceID, ControlStream, Heartbeats, "
              "ActiveSessions, Config" % keys(st)[:5])
    ctx.check(UUID4.match(st["InstanceID"]), "InstanceID %r is not a v4 UUID" % st["InstanceID"])
    cs = st["ControlStream"]
    ctx.check(keys(cs) == ["Connected", "Since", "DurationMs", "MessagesRx"],
              "ControlStream keys %s" % keys(cs))
    ctx.check(cs["Connected"] is True and TIME.match(cs["Since"]) and isinstance(cs["DurationMs"], int)
              and cs["DurationMs"] > 0 and isinstance(cs["MessagesRx"], int) and cs["MessagesRx"] >= 2,
              "ControlStream values: %r (want connected, a time, DurationMs > 0, MessagesRx >= 2: the "
              "keepalive answer and the device's answer)" % cs)
    since = parse_time(cs["Since"])
    ctx.check(abs((time.time() - since) * 1000 - cs["DurationMs"]) < 2000,
              "ControlStream.DurationMs %d does not match Since %s" % (cs["DurationMs"], cs["Since"]))
    hb = st["Heartbeats"]
    ctx.check(keys(hb) == ["LastTx", "MsSinceLastTx", "LastTxRTTMs", "LastRx", "MsSinceLastRx"],
              "Heartbeats keys %s" % keys(hb))
    ctx.check(TIME.match(hb["LastTx"]) and TIME.match(hb["LastRx"]) and
              all(isinstance(hb[k], int) and hb[k] >= 0 for k in ("MsSinceLastTx", "LastTxRTTMs", "MsSinceLastRx"))
              and hb["MsSinceLastTx"] < 31000 and hb["MsSinceLastRx"] < 31000,
              "Heartbeats values: %r (the agent sends a keepalive at connect and every 30 s; the "
              "backend answers each)" % hb)
    ctx.check(st["ActiveSessions"] == 1, "ActiveSessions %r, want 1" % st["ActiveSessions"])
    cfg = st["Config"]
    ctx.check(keys(cfg)[:6] == ["Listeners", "MD5Enabled", "MD5Interface", "ProxyTarget", "APIEmail", "SiteID"],
              "Config keys %s" % keys(cfg))
    want = {"Listeners": ["%s:%d" % (AGENT_IP, agent.listen_port)], "MD5Enabled": False,
            "ProxyTarget": "127.0.0.1:%d" % agent.target_port, "APIEmail": EMAIL, "SiteID": 0}
    for k, v in want.items():
        ctx.check(cfg[k] == v, "Config.%s is %r, want %r" % (k, cfg[k], v))
    ctx.check(isinstance(cfg["MD5Interface"], str), "Config.MD5Interface %r" % cfg["MD5Interface"])
    deny = st.get("DenyList")
    ctx.check(isinstance(deny, list) and len(deny) == 1, "DenyList is %r, want one entry" % (deny,))
    entry = deny[0]
    ctx.check(keys(entry) == ["Device", "Until", "RemainingMs"] and entry["Device"] == UNKNOWN,
              "DenyList entry %r, want Device %s, Until, RemainingMs" % (entry, UNKNOWN))
    ctx.check(1100_000 < entry["RemainingMs"] <= 1200_000 and TIME.match(entry["Until"]),
              "DenyList entry %r: want about 1200 s left" % entry)
    ctx.check(abs(parse_time(entry["Until"]) - time.time() - entry["RemainingMs"] / 1000) < 2,
              "DenyList Until and RemainingMs disagree: %r" % entry)
    ctx.check(st["Counters"]["DenyListSize"] == 1, "Counters.DenyListSize %r" % st["Counters"]["DenyListSize"])
    ctx.step("/admin/status: the vendor's fields in order with the agent's settings; DenyList holds %s "
             "for %d more s" % (UNKNOWN, entry["RemainingMs"] // 1000))


def check_session_figures(ctx, where, s, device):
    ctx.check(s.get("DeviceASN") == DEVICE_ASN, "%s DeviceASN %r, want %d (from the device's OPEN)"
              % (where, s.get("DeviceASN"), DEVICE_ASN))
    ctx.check(s.get("RouterID") == device.ip, "%s RouterID %r, want %s (the device's router id)"
              % (where, s.get("RouterID"), device.ip))
    for k in ("MessagesUp", "MessagesDown", "BytesUp", "BytesDown"):
        ctx.check(isinstance(s.get(k), int), "%s %s is %r" % (where, k, s.get(k)))
    # Up: OPEN, KEEPALIVE, UPDATEs; down: the collector's OPEN and KEEPALIVE.
    ctx.check(s["MessagesUp"] >= 3 and s["MessagesDown"] >= 2 and
              s["BytesUp"] >= 19 * s["MessagesUp"] and s["BytesDown"] >= 19 * s["MessagesDown"],
              "%s message/byte figures implausible: %r" % (where, {k: s[k] for k in
                                                                   ("MessagesUp", "MessagesDown", "BytesUp", "BytesDown")}))


def check_sessions(ctx, agent, device):
    listing = agent.sessions()
    ctx.step("GET /admin/sessions:\n" + json.dumps(listing, indent=2))
    ctx.check(keys(listing) == ["NumSessions", "Sessions"] and listing["NumSessions"] == 1,
              "/admin/sessions: %r" % listing)
    s = listing["Sessions"][0]
    ctx.check(keys(s)[:4] == ["Peer", "Time", "DurationMs", "Connected"],
              "/admin/sessions entry keys %s, want Peer, Time, DurationMs, Connected first" % keys(s))
    ctx.check(s["Peer"].startswith(device.ip + ":") and TIME.match(s["Time"]) and
              s["DurationMs"] > 0 and s["Connected"] is True, "/admin/sessions entry %r" % s)
    check_session_figures(ctx, "/admin/sessions entry", s, device)

    detail = agent.session(device.ip)
    ctx.step("GET /admin/sessions/%s:\n%s" % (device.ip, json.dumps(detail, indent=2)))
    ctx.check(keys(detail)[:5] == ["Peer", "ConnectedSince", "ConnectedDurationMs", "SessionID", "ServerMetadata"],
              "/admin/sessions/<ip> keys %s, want the vendor's Peer, ConnectedSince, ConnectedDurationMs, "
              "SessionID, ServerMetadata first" % keys(detail)[:5])
    ctx.check(detail["Peer"] == s["Peer"] and TIME.match(detail["ConnectedSince"]) and
              detail["ConnectedDurationMs"] > 0 and UUID4.match(detail["SessionID"]),
              "/admin/sessions/<ip> values: %r" % {k: detail[k] for k in keys(detail)[:4]})
    md = detail["ServerMetadata"]
    ctx.check(isinstance(md, dict) and all(isinstance(v, list) for v in md.values()),
              "ServerMetadata is %r, want {key: [values]}" % (md,))
    ctx.check(md.get("counter-up") == ["0"] and md.get("counter-down") == ["0"],
              "ServerMetadata counters %r / %r, want the backend's [\"0\"] at the stream's start"
              % (md.get("counter-up"), md.get("counter-down")))
    check_session_figures(ctx, "/admin/sessions/%s" % device.ip, detail, device)
    for form in ("[%s]" % device.ip, "::ffff:%s" % device.ip):
        other = agent.session(form)
        ctx.check(other["SessionID"] == detail["SessionID"], "/admin/sessions/%s finds another session" % form)
    ctx.step("/admin/sessions and /admin/sessions/%s: the vendor's fields; DeviceASN %d, RouterID %s, "
             "%d/%d messages and %d/%d bytes up/down" % (device.ip, detail["DeviceASN"], detail["RouterID"],
                                                        detail["MessagesUp"], detail["MessagesDown"],
                                                        detail["BytesUp"], detail["BytesDown"]))
    return detail


def check_errors(ctx, agent):
    port = agent.metrics_port
    code, body = http_get(agent.url("/admin/status?pretty"))
    ctx.check(code == 200 and body.startswith("{\n  \"InstanceID\""), "?pretty is not indented: %r" % body[:60])
    code, body = http_get(agent.url("/admin/status"))
    ctx.check(code == 200 and "\n" not in body.strip(), "without ?pretty the JSON should be compact")
    for path in ("/nope", "/admin", "/admin/statusx", "/metricsx"):
        code, body = http_get(agent.url(path))
        ctx.check(code == 404 and "error" in json.loads(body), "GET %s: %s %s, want 404 JSON" % (path, code, body[:100]))
    code, head, body = raw_request(port, b"POST /admin/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                         b"Connection: close\r\n\r\n")
    ctx.check(code == 405 and re.search(r"(?im)^Allow: GET, HEAD", head) and "error" in json.loads(body),
              "POST /admin/status: %s %s %s, want 405 JSON with Allow" % (code, head.splitlines()[:1], body[:100]))
    code, head, body = raw_request(port, b"GET /hc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                         b"Connection: close\r\n\r\nabc")
    ctx.check(code == 400, "GET with a body: %s, want 400" % code)
    code, body = http_get(agent.url("/admin/sessions/not-an-address"))
    ctx.check(code == 400 and "error" in json.loads(body), "/admin/sessions/not-an-address: %s %s" % (code, body))
    code, body = http_get(agent.url("/admin/sessions/127.0.0.77"))
    ctx.check(code == 404 and "error" in json.loads(body), "a device without a session: %s %s" % (code, body))
    big = b"GET /hc HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\nConnection: close\r\n\r\n"
    code, _, _ = raw_request(port, big)
    ctx.check(code in (400, 413, 431) or code == 0, "an oversized header got %s" % code)
    code, _, _ = raw_request(port, b"GARBAGE\r\n\r\n")
    ctx.check(code in (400, 0), "a malformed request line got %s" % code)
    code, body = http_get(agent.url("/hc"))
    ctx.check(code == 200, "the admin stopped answering after hostile requests: %s %s" % (code, body[:100]))
    ctx.step("?pretty indents; 404 for unknown paths, 405 + Allow for POST, 400 for a body, a bad "
             "address or garbage, 404 for a device without a session; still answering")

    # Clients that connect and say nothing (or half a request) must not hold
    # up anyone: each request is served while they wait.
    idle = []
    try:
        for i in range(20):
            s = socket.create_connection((AGENT_IP, port), timeout=5)
            if i % 2:
                s.sendall(b"GET /admin/status HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(s)
        t = time.monotonic()
        for _ in range(5):
            code, _ = http_get(agent.url("/admin/sessions"), timeout=2)
            ctx.check(code == 200, "with 20 silent clients connected, /admin/sessions got %s" % code)
        ctx.check(time.monotonic() - t < 2.5, "5 requests took %.1f s next to 20 silent clients"
                  % (time.monotonic() - t))
    finally:
        for s in idle:
            s.close()
    ctx.step("20 silent or half-finished clients did not delay other requests")


def test(ctx):
    topo = Topology(ctx)
    topo.start_collector([(DEVICE, DEVICE_ASN)])
    ingest = topo.start_ingest([DEVICE])

    # An agent whose backend is not there yet: initializing.
    dead_port = ctx.free_port(AGENT_IP)
    lonely = Agent(ctx, ctx.binaries, ctx.free_port(AGENT_IP), dead_port, topo.tls,
                   ctx.free_port(AGENT_IP), name="kbgp-nobackend").start()
    doc = wait_hc(ctx, lonely, "initializing", 503, 10)
    ctx.step("agent without a backend: /hc %s" % json.dumps(doc))
    ctx.check(doc.get("checks", {}).get("control_stream") not in (None, "ok"),
              "/hc checks should name the Control stream as the failing check: %r" % doc)
    lonely.stop()

    agent = topo.start_agent()
    wait_hc(ctx, agent, "ok", 200, 15)
    routes = make_routes(50, 5)
    device = topo.start_device("bird", DEVICE, DEVICE_ASN, routes)
    topo.wait_established(device, timeout=30)
    topo.wait_routes(device, routes, timeout=30)

    # An unknown device is refused and deny-listed.
    mark = agent.log.mark()
    unknown = topo.start_device("bird", UNKNOWN, UNKNOWN_ASN, make_routes(3, 0))
    ctx.wait_until(lambda: agent.log.find(DENY_TEXT, since=mark, device_ip=UNKNOWN), 20,
                   "the agent to deny-list %s" % UNKNOWN)
    unknown.stop()
    doc = wait_hc(ctx, agent, "ok", 200, 10)
    ctx.check(all(v == "ok" for v in doc.get("checks", {}).values()) and
              set(doc.get("checks", {})) >= {"listener", "uplink", "control_stream"},
              "/hc checks: %r" % doc.get("checks"))
    ctx.step("/hc: %s" % json.dumps(doc))

    check_status(ctx, agent, device)
    before = check_sessions(ctx, agent, device)

    # The per-session figures follow the traffic.
    device.set_routes(routes[:20])
    topo.wait_routes(device, routes[:20], timeout=30)
    after = agent.session(device.ip)
    ctx.check(after["MessagesUp"] > before["MessagesUp"] and after["BytesUp"] > before["BytesUp"],
              "withdrawals did not raise MessagesUp/BytesUp: %d/%d -> %d/%d" % (
                  before["MessagesUp"], before["BytesUp"], after["MessagesUp"], after["BytesUp"]))
    ctx.step("after withdrawals: MessagesUp %d -> %d, BytesUp %d -> %d" % (
        before["MessagesUp"], after["MessagesUp"], before["BytesUp"], after["BytesUp"]))

    check_errors(ctx, agent)

    # The backend goes away: failing; it comes back: ok.
    ingest.stop()
    doc = wait_hc(ctx, agent, "failing", 503, 15)
    ctx.step("backend stopped: /hc %s" % json.dumps(doc))
    ingest.start()
    wait_hc(ctx, agent, "ok", 200, 45)
    ctx.step("backend back: /hc ok")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_admin_api", __doc__))
