"""Helpers for the bad-input tests (test_bad_device.py, test_bad_backend.py):
a collector stand-in that swallows whatever it gets, raw BGP devices,
counters and file descriptors of the agent."""

import os
import selectors
import socket
import struct
import threading
import time

from .errors import TestFailure
from . import resilience
from .bird import protocol_name
from .bgpwire import MARKER, bgp_message


class Sink:
    """A TCP listener on `ip` that accepts every connection and reads and
    discards what arrives: the collector for devices whose bytes no BGP
    daemon should judge (the agent must judge them first). One thread,
    selectors; counts connections."""

    def __init__(self, ip, port):
        self.ip = ip
        self.port = port
        self.accepted = 0
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((ip, port))
        self._lsock.listen(1024)
        self._lsock.setblocking(False)
        self._sel.register(self._lsock, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self._sel.select(0.2):
                s = key.fileobj
                if s is self._lsock:
                    try:
                        c, _ = s.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    self.accepted += 1
                    self._sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._sel.unregister(s)
                    s.close()

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        for key in list(self._sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass


def header(length, msg_type):
    return MARKER + struct.pack("!HB", length, msg_type)


def connect_from(ip, agent_port, agent_ip="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((ip, 0))
    s.settimeout(timeout)
    s.connect((agent_ip, agent_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_closed(sock, timeout):
    """Reads until the agent ends the connection; returns ("reset"|"eof",
    seconds) or (None, seconds) when it stays open for `timeout`."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < timeout:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return "reset", time.monotonic() - start
        except OSError as e:
            return "error %s" % e, time.monotonic() - start
        if not data:
            return "eof", time.monotonic() - start
    return None, time.monotonic() - start


def bgp_update_v4(prefix, plen, asn, next_hop, large_communities=()):
    """An UPDATE announcing one IPv4 prefix: ORIGIN IGP, AS_PATH [asn]
    (4-octet, as negotiated by bgp_open's capability), NEXT_HOP, and
    LARGE_COMMUNITY (RFC 8092) with `large_communities` [(a, b, c)] if any:
    12 bytes each, for UPDATEs of a chosen size."""
    attrs = b"\x40\x01\x01\x00"
    attrs += b"\x40\x02\x06\x02\x01" + struct.pack("!I", asn)
    attrs += b"\x40\x03\x04" + socket.inet_aton(next_hop)
    if large_communities:
        value = b"".join(struct.pack("!III", *c) for c in large_communities)
        # optional transitive, extended length (a 2-byte length field)
        attrs += b"\xd0\x20" + struct.pack("!H", len(value)) + value
    nlri = bytes([plen]) + socket.inet_aton(prefix)[:(plen + 7) // 8]
    body = struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri
    return bgp_message(2, body)


class ByteWiseSpeaker(resilience.MiniSpeaker):
    """A device that writes every byte of every message in a send() of its
    own (TCP_NODELAY, a short pause between bytes): OPEN, then KEEPALIVE
    after the peer's OPEN, an UPDATE once Established, a KEEPALIVE every
    second once Established. The agent must reassemble all of it."""

    keepalive_before_established = False

    def __init__(self, ip, asn, agent_port, hold=30, gap=0.0005):
        super().__init__(ip, asn, agent_port, hold=hold)
        self.gap = gap
        self.bytes_written = 0
        self._lock = threading.Lock()  # the reader and the keepalive thread both write
        self.update = None

    def start(self, update=None):
        self.update = update
        return super().start()

    def _connect(self):
        return connect_from(self.ip, self.port, self.agent_ip)

    def _send(self, message):
        with self._lock:
            for i in range(len(message)):
                self.sock.send(message[i:i + 1])
                self.bytes_written += 1
                if self.gap:
                    time.sleep(self.gap)

    def _on_established(self):
        if self.update:
            self._send(self.update)


def fd_counts(agent):
    """{process name: open descriptors} of the supervisor and its workers."""
    out = {}
    for p in agent.processes():
        if not p["comm"].startswith("kbgp"):
            continue
        try:
            out[p["comm"]] = len(os.listdir("/proc/%d/fd" % p["pid"]))
        except OSError:
            pass
    return out


def start_good_devices(ctx, topo, collector, good, pool_for):
    """The well-behaved BIRD devices (ip, asn, k) with pool_for(k) routes
    each, Established with exactly their routes at the collector. Returns
    (devices, pools, session logs of both ends to check for drops)."""
    devices, pools = [], []
    for ip, asn, k in good:
        pool = pool_for(k)
        devices.append(topo.start_device("bird", ip, asn, pool))
        pools.append(pool)
    for dev, pool in zip(devices, pools):
        topo.wait_established(dev)
        resilience.wait_exact(ctx, topo, dev, pool)
    logs = []
    for dev in devices:
        logs.append((resilience.SessionLog(dev, dev.proto), "device %s" % dev.ip))
        logs.append((resilience.SessionLog(collector, protocol_name(dev.ip)),
                     "the collector's session with %s" % dev.ip))
    return devices, pools, logs


def restarts(agent):
    workers = agent.status().get("Workers") or {}
    return {w: (v or {}).get("Restarts") for w, v in workers.items()}


def counters(agent):
    return agent.status()["Counters"]


def metric_value(agent, name, labels):
    """The value of `name{labels}` in /metrics (labels: 'reason="x"')."""
    code, text = agent.metrics()
    if code != 200:
        raise TestFailure("GET /metrics: status %s" % code)
    want = "%s{%s} " % (name, labels)
    for line in text.splitlines():
        if line.startswith(want):
            return int(float(line.split()[-1]))
    raise TestFailure("/metrics has no %s{%s}" % (name, labels))


def check_framing_error_reported(ctx, agent, ip, reason, since, before):
    """After a device at `ip` sent bad framing: the agent logged "malformed
    BGP framing from device" with `reason` and the device's peer-addr
    (since log mark `since`), and counted it once in /admin/status
    (FramingErrorsByReason, FramingErrors) and in /metrics, against
    `before` (counters() taken before the bytes were sent). Returns the log
    line and the metric's value."""
    line = [None]

    def logged():
        for l, obj in agent.log.records(since):
            if obj and obj.get("message") == "malformed BGP framing from device" and \
                    obj.get("reason") == reason and str(obj.get("peer-addr", "")).startswith(ip + ":"):
                line[0] = l
                return True
        return False
    ctx.wait_until(logged, 5, "a log line 'malformed BGP framing from device' with reason %s and "
                   "peer-addr %s" % (reason, ip))
    want = before["FramingErrorsByReason"][reason] + 1

    def counted():
        c = counters(agent)
        return c["FramingErrorsByReason"][reason] == want and c["FramingErrors"] == before["FramingErrors"] + 1
    ctx.wait_until(counted, 5, "Counters.FramingErrorsByReason.%s and FramingErrors to grow by one" % reason,
                   describe=lambda: str(counters(agent)["FramingErrorsByReason"]))
    m = metric_value(agent, "kbgp_framing_errors_by_reason_total", 'reason="%s"' % reason)
    ctx.check(m == want, "kbgp_framing_errors_by_reason_total{reason=\"%s\"} is %d, want %d" % (reason, m, want))
    return line[0], m
