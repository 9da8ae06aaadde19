"""Restarts without loss (issue 5): what the restart and resume tests share.

  RouteChurn     a device whose routes change continuously (a rotating
                 subset of a pool, rewritten and `birdc configure`d every
                 0.2 s), so every restart happens under UPDATE load
  SessionLog     counts a BIRD protocol's session establishments and drops
                 in its log: "one continuous session" is 1 and 0
  TcpRelay       a TCP relay between agent and backend that can be cut
                 (every connection closed, nothing accepted) and restored
  WorkerKiller   kill -9 of one of the agent's workers, waiting for the
                 supervisor to have started its successor
  wait_exact     waits until the collector holds exactly the device's routes
"""

import os
import random
import re
import signal
import socket
import threading
import time

from .bgpwire import BadFraming, MessageSplitter, bgp_message
from .errors import TestFailure
from .procs import pid_alive
from .routes import make_routes


class RouteChurn:
    """Announces a changing 3/4 of `pool` from `device` (a BirdDevice):
    tick k announces the routes with (index + k) % 4 != 0, so each tick
    withdraws a quarter and re-announces another. Runs in a thread until
    stop(), which returns the routes announced last (what the collector must
    end up holding)."""

    def __init__(self, device, pool, period=0.2):
        self.device = device
        self.pool = list(pool)
        self.period = period
        self.ticks = 0
        self.errors = []
        self.current = self._set(0)
        self._stop = threading.Event()
        self._thread = None

    def _set(self, k):
        return [r for r in self.pool if (r.index + k) % 4 != 0]

    def start(self):
        self.device.set_routes(self.current)
        self._thread = threading.Thread(target=self._run, name="route-churn", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        k = 0
        while not self._stop.wait(self.period):
            k += 1
            routes = self._set(k)
            try:
                self.device.set_routes(routes)
                self.current = routes
                self.ticks += 1
            except Exception as e:  # recorded; stop() reports it
                self.errors.append(str(e))
                if len(self.errors) > 20:
                    return

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        if self.errors:
            raise TestFailure("route churn failed %d times, e.g.: %s" % (len(self.errors), self.errors[0]))
        return self.current


def churn_pool(n4=2000, n6=200, first4=0, first6=0):
    """n4 IPv4 /24s from the first4-th on and n6 IPv6 /48s from the
    first6-th on (disjoint pools for several devices)."""
    from .routes import Route, ipv4_prefix, ipv6_prefix
    if first4 == 0 and first6 == 0:
        return make_routes(n4, n6)
    routes = [Route(first4 + i, ipv4_prefix(first4 + i), 4) for i in range(n4)]
    routes += [Route(first4 + n4 + first6 + j, ipv6_prefix(first6 + j), 6) for j in range(n6)]
    return routes


class SessionLog:
    """A BIRD protocol's session history from its log (`debug { states }`):
    "<proto>: BGP session established" and "<proto>: State changed to down"."""

    def __init__(self, bird, proto):
        self.path = bird.ctx.log_path(bird.name)
        self.name = bird.name
        self.proto = proto

    def counts(self):
        est = down = 0
        try:
            with open(self.path, errors="replace") as f:
                for line in f:
                    if (" %s: " % self.proto) not in line:
                        continue
                    if "BGP session established" in line:
                        est += 1
                    elif "State changed to down" in line:
                        down += 1
        except FileNotFoundError:
            pass
        return est, down

    def check_continuous(self, ctx, what):
        est, down = self.counts()
        ctx.check(est == 1 and down == 0,
                  "%s (%s, protocol %s) saw %d session establishment(s) and %d drop(s); want one "
                  "continuous session" % (what, self.name, self.proto, est, down))
        return est, down


class TcpRelay:
    """Relays TCP connections from 127.0.0.1:`port` to `target` (host, port),
    two blocking copier threads per connection. cut() resets every relayed
    connection and stops accepting (connections are refused, as with a dead
    proxy); restore() accepts again."""

    def __init__(self, port, target):
        self.port = port
        self.target = target
        self.lock = threading.Lock()
        self.conns = set()
        self.listener = None
        self.connections_made = 0

    def start(self):
        self.restore()
        return self

    def restore(self):
        with self.lock:
            if self.listener:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(128)
            self.listener = s
        threading.Thread(target=self._accept, args=(s,), name="relay-accept", daemon=True).start()

    def cut(self):
        with self.lock:
            listener, self.listener = self.listener, None
            conns, self.conns = self.conns, set()
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for c in conns:
            self._reset(c)

    stop = cut

    @staticmethod
    def _reset(c):
        try:
            # A reset, as a broken path or a dead proxy would show.
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.close()

    def _accept(self, listener):
        while True:
            try:
                a, _ = listener.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target, timeout=2)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    a.close()
                    b.close()
                    return
                self.conns.update((a, b))
                self.connections_made += 1
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._copy, args=(x, y), name="relay-copy", daemon=True).start()

    def _copy(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        # One side ended: end both (a half-open relay helps nobody here).
        with self.lock:
            gone = src in self.conns
            self.conns.discard(src)
            self.conns.discard(dst)
        if gone:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                x.close()


WORKER_BINARIES = {"listener": "kbgp-listener", "uplink": "kbgp-uplink", "admin": "kbgp-admin"}


class WorkerKiller:
    """kill -9 of the agent's workers, one at a time, counting them."""

    def __init__(self, ctx, agent):
        self.ctx = ctx
        self.agent = agent
        self.kills = {w: 0 for w in WORKER_BINARIES}
        self.times = {w: [] for w in WORKER_BINARIES}  # monotonic time of each kill

    def pid(self, worker):
        comm = WORKER_BINARIES[worker]
        for p in self.agent.processes():
            if p["comm"] == comm and p["ppid"] == self.agent.pid:
                return p["pid"]
        return None

    def wait_running(self, worker, not_pid=None, timeout=20):
        """The worker's pid once one runs (other than `not_pid`)."""
        def running():
            if not self.agent.proc.alive():
                raise TestFailure("kbgp exited with status %s" % self.agent.proc.exited_with())
            p = self.pid(worker)
            return p if p and p != not_pid and pid_alive(p) else None
        return self.ctx.wait_until(running, timeout, "kbgp to run a %s" % worker, interval=0.05)

    def kill(self, worker):
        pid = self.wait_running(worker)
        os.kill(pid, signal.SIGKILL)
        self.kills[worker] += 1
        self.times[worker].append(time.monotonic())
        return pid

    def kill_and_wait(self, worker, timeout=20):
        """kill -9, then the successor's pid; returns (old pid, new pid, seconds)."""
        t = time.monotonic()
        old = self.kill(worker)
        new = self.wait_running(worker, not_pid=old, timeout=timeout)
        return old, new, time.monotonic() - t


def restarts_reported(agent):
    """{worker: Restarts} from /admin/status and {worker: value} of
    kbgp_worker_restarts_total from /metrics."""
    st = agent.status()
    workers = st.get("Workers") or {}
    status = {w: (workers.get(w) or {}).get("Restarts") for w in WORKER_BINARIES}
    from .net import http_get
    code, text = http_get(agent.url("/metrics"))
    if code != 200:
        raise TestFailure("GET /metrics: status %s" % code)
    metrics = {}
    for line in text.splitlines():
        m = re.match(r'kbgp_worker_restarts_total\{worker="(\w+)"\}\s+(\d+)', line)
        if m:
            metrics[m.group(1)] = int(m.group(2))
    return status, metrics


def wait_exact(ctx, topo, device, routes, timeout=90):
    """Waits until the collector holds exactly `routes` from `device`, every
    attribute as configured (Topology.check_routes), not just the counts."""
    last = [None]

    def exact():
        try:
            topo.check_routes(device, routes)
            return True
        except TestFailure as e:
            last[0] = str(e)
            return False
    topo.wait_routes(device, routes, timeout=timeout)
    ctx.wait_until(exact, 30, "the collector to hold exactly the device's routes", interval=1.0,
                   poke=lambda: topo.poke(device), describe=lambda: last[0])


def random_schedule(workers, kills_each, min_gap, mean_step, rng=None, prior=None, per_minute=9):
    """A kill order: `kills_each` kills of every worker, one kill every
    ~`mean_step` seconds, the same worker never twice within `min_gap`
    seconds nor more than `per_minute` times within 60 s (counting `prior`:
    {worker: [seconds, relative to the schedule's start (<= 0), of earlier
    kills]}), so no worker reaches the supervisor's crash-loop limit.
    Returns [(seconds from start, worker)]."""
    rng = rng or random.Random()
    left = {w: kills_each for w in workers}
    times = {w: list((prior or {}).get(w, [])) for w in workers}
    t = 0.0
    out = []
    while any(left.values()):
        t += rng.uniform(0.5 * mean_step, 1.5 * mean_step)

        def ready(w):
            recent = [x for x in times[w] if t - x < 60.0]
            return left[w] and (not times[w] or t - times[w][-1] >= min_gap) and len(recent) < per_minute
        candidates = [w for w in workers if ready(w)]
        if not candidates:
            continue
        # The worker with the most kills left goes first among the ready
        # ones half of the time, so they all finish at about the same time.
        w = max(candidates, key=lambda x: left[x]) if rng.random() < 0.5 else rng.choice(candidates)
        out.append((t, w))
        left[w] -= 1
        times[w].append(t)
    return out


# ---- timers: short hold times make every stall visible as a drop ----------

def with_timers(conf_text, hold, keepalive):
    """A BIRD config with `hold time` and `keepalive time` set in every BGP
    protocol block."""
    return re.sub(r"(protocol bgp \S+ \{\n)",
                  lambda m: m.group(1) + "  hold time %d;\n  keepalive time %d;\n" % (hold, keepalive),
                  conf_text)


def _patch_config(bird, hold, keepalive, export_all):
    with open(bird.conf) as f:
        text = f.read()
    text = with_timers(text, hold, keepalive)
    if export_all:
        text = text.replace("import all; export none;", "import all; export all;")
    with open(bird.conf, "w") as f:
        f.write(text)


def timed(cls, hold, keepalive, export_all=False):
    """A subclass of BirdCollector / BirdDevice whose sessions use these
    timers (e.g. hold 15 s, keepalives every second: the collector then
    sends the device traffic every second, and a path stalled for 15 s
    drops the session). `export_all` (collector): every device gets the
    other devices' routes, so the backend -> device direction carries
    UPDATEs too (a device's own routes never go back to it)."""
    class Timed(cls):
        def write_config(self):
            super().write_config()
            _patch_config(self, hold, keepalive, export_all)
    Timed.__name__ = "Timed" + cls.__name__
    return Timed


# ---- a minimal BGP speaker: a device that can reset its connection ---------

def bgp_open(asn, router_id, hold, extended_message=False):
    """An OPEN with the capabilities Multiprotocol IPv4 unicast and 4-octet
    ASN, and Extended Message (RFC 8654, code 6) if `extended_message`."""
    import struct
    caps = b"\x01\x04\x00\x01\x00\x01" + b"\x41\x04" + struct.pack("!I", asn)
    if extended_message:
        caps += b"\x06\x00"
    opt = b"\x02" + bytes([len(caps)]) + caps
    body = struct.pack("!BHH4sB", 4, asn if asn < 65536 else 23456, hold,
                       socket.inet_aton(router_id), len(opt)) + opt
    return bgp_message(1, body)


class MiniSpeaker:
    """A device of our own: connects from `ip` to the agent, completes OPEN /
    KEEPALIVE, sends a KEEPALIVE every second and reads whatever comes. Not
    a BGP implementation; enough for a collector to call the session
    Established. reset() ends it with a TCP reset (SO_LINGER 0).
    Subclasses change how it connects and writes (_connect, _send) and
    what it does once Established (_on_established)."""

    keepalive_before_established = True

    def __init__(self, ip, asn, port, agent_ip="127.0.0.1", hold=15):
        self.ip = ip
        self.asn = asn
        self.port = port
        self.agent_ip = agent_ip
        self.hold = hold
        self.sock = None
        self.established = threading.Event()
        self.closed = threading.Event()
        self.received = 0
        self.framing_error = None  # why the reader hung up on bad framing
        self._stop = threading.Event()

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.ip, 0))
        s.connect((self.agent_ip, self.port))
        return s

    def _send(self, message):
        self.sock.sendall(message)

    def _open_message(self):
        """The OPEN it sends first."""
        return bgp_open(self.asn, self.ip, self.hold)

    def _on_established(self):
        """Called once, by the reader, when the peer's KEEPALIVE follows its OPEN."""

    def start(self):
        self.sock = self._connect()
        self.sock.settimeout(None)
        self._send(self._open_message())
        self._reader = threading.Thread(target=self._read, daemon=True, name="speaker-read")
        self._reader.start()
        threading.Thread(target=self._keepalives, daemon=True, name="speaker-ka").start()
        return self

    def _read(self):
        splitter = MessageSplitter()
        got_open = False
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg_type, _ in splitter.feed(data):
                    self.received += 1
                    if msg_type == 1 and not got_open:
                        got_open = True
                        self._send(bgp_message(4))
                    elif msg_type == 4 and got_open and not self.established.is_set():
                        self.established.set()
                        self._on_established()
        except BadFraming as e:
            # What the agent relays from the backend is never this; a device
            # would answer with a NOTIFICATION, this one just hangs up.
            # (shutdown, not close: the keepalive thread still holds the
            # descriptor; see _stop_reader.)
            self.framing_error = str(e)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except OSError:
            pass
        self.closed.set()

    def _keepalives(self):
        while not self._stop.wait(1.0):
            if not (self.keepalive_before_established or self.established.is_set()):
                continue
            try:
                self._send(bgp_message(4))
            except OSError:
                return

    def _stop_reader(self):
        """Wakes the reader (SHUT_RD: its recv returns 0, nothing is sent)
        and waits for it before the descriptor is closed. Closing under a
        reader is a race: its next recv() may take the descriptor number
        after the kernel gave it to the next socket the test opens, and
        steal up to 64 KiB of that connection's bytes."""
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        reader = getattr(self, "_reader", None)
        if reader is not None and reader is not threading.current_thread():
            reader.join(10)

    def reset(self):
        self._stop.set()
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self._stop_reader()
        self.sock.close()

    def close(self):
        self._stop.set()
        self._stop_reader()
        try:
            self.sock.close()
        except OSError:
            pass


def originating(cls):
    """A subclass of (a subclass of) BirdCollector that also originates
    routes of its own (static blackholes from an included file), which it
    sends every device with `export all`: traffic towards the devices that
    does not depend on what the devices send. set_routes(prefixes) changes
    them (`birdc configure`), so a RouteChurn can drive it."""
    class Originating(cls):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.routes_file = self.ctx.path(self.name + "_own_routes.conf")
            self.routes_list = []

        def write_routes(self):
            v4 = [r for r in self.routes_list if r.family == 4]
            v6 = [r for r in self.routes_list if r.family == 6]
            lines = ["protocol static own4 {", "  ipv4;"]
            lines += ["  route %s blackhole;" % r.prefix for r in v4]
            lines += ["}", "protocol static own6 {", "  ipv6;"]
            lines += ["  route %s blackhole;" % r.prefix for r in v6]
            lines += ["}"]
            tmp = self.routes_file + ".new"
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, self.routes_file)

        def write_config(self):
            super().write_config()
            self.write_routes()
            with open(self.conf, "a") as f:
                f.write('include "%s";\n' % self.routes_file)

        def set_routes(self, routes):
            self.routes_list = list(routes)
            self.write_routes()
            out = self.birdc("configure", timeout=120)
            if not any("Reconfigured" in l or "Reconfiguration in progress" in l for l in out):
                raise TestFailure("birdc configure on %s: %s" % (self.name, " | ".join(out)))
    Originating.__name__ = "Originating" + cls.__name__
    return Originating


def collector_pool(n4=3000):
    """IPv4 /24s a collector originates, 172.16.0.0/24 on: none of the
    devices' prefixes."""
    from .routes import Route
    return [Route(i, "172.%d.%d.0/24" % (16 + i // 256, i % 256), 4) for i in range(n4)]
