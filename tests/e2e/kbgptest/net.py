"""Loopback networking helpers: free ports, waiting, HTTP JSON, raw TCP."""

import errno
import json
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request

from . import sanitizers
from .errors import TestFailure

# Ports are drawn below the kernel's ephemeral range (32768-60999 on Linux),
# so an outgoing connection made by some daemon cannot take a port we just
# handed out for a listener.
_PORT_RANGE = (20000, 32000)
_handed_out = set()


def free_port(addr="127.0.0.1", also_free_on=()):
    """A TCP port that can be bound on `addr` (and on every address in
    `also_free_on`) right now, never the same one twice in this process."""
    for _ in range(2000):
        port = random.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        if all(_bindable(a, port) for a in (addr, *also_free_on)):
            _handed_out.add(port)
            return port
    raise TestFailure("no free TCP port found on %s" % addr)


def _bindable(addr, port):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((addr, port))
            return True
        except OSError:
            return False


class WaitTimeout(TestFailure):
    pass


def wait_until(cond, timeout, what, interval=0.2, poke=None, describe=None):
    """Calls `cond()` until it returns something truthy and returns that.
    `poke()` runs before every try (e.g. to wake BIRD). On timeout raises
    WaitTimeout naming `what`, with `describe()` (the state seen last).
    `timeout` is scaled by sanitizers.slowdown()."""
    timeout *= sanitizers.slowdown()
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        if poke:
            try:
                poke()
            except Exception as e:  # a poke is best effort
                last_error = e
        try:
            value = cond()
            if value:
                return value
        except TestFailure:
            raise
        except Exception as e:
            last_error = e
        if time.monotonic() >= deadline:
            detail = ""
            if describe:
                try:
                    detail = "; last seen: %s" % describe()
                except Exception as e:
                    detail = "; (describing the state failed: %s)" % e
            if last_error:
                detail += "; last error: %s" % last_error
            raise WaitTimeout("timed out after %.0f s waiting for %s%s" % (timeout, what, detail))
        time.sleep(interval)


def http_get(url, timeout=3.0):
    """(status, body text) of a GET; status 0 and the error text when the
    server cannot be reached."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def http_get_json(url, timeout=3.0):
    """The decoded JSON body of a GET that answered 200; raises TestFailure
    with the status and body otherwise."""
    status, body = http_get(url, timeout)
    if status != 200:
        raise TestFailure("GET %s: status %s: %s" % (url, status, body[:500]))
    try:
        return json.loads(body)
    except ValueError as e:
        raise TestFailure("GET %s: not JSON (%s): %s" % (url, e, body[:500]))


def tcp_listening(addr, port, timeout=1.0):
    """True if a TCP connection to addr:port is accepted."""
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect_and_watch(src, dst, port, timeout):
    """Connects from `src` to dst:port and waits up to `timeout` seconds for
    the other side to close. Returns ("closed"|"reset"|"open"|"refused",
    bytes received)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        try:
            s.connect((dst, port))
        except ConnectionRefusedError:
            return "refused", b""
        got = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "open", got
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return "open", got
            except ConnectionResetError:
                return "reset", got
            except OSError as e:
                if e.errno == errno.ECONNRESET:
                    return "reset", got
                raise
            if not chunk:
                return "closed", got
            got += chunk
    finally:
        s.close()


def established_to(port, addr="127.0.0.1"):
    """The ESTABLISHED TCP connections to addr:port, seen from the
    connecting side, as a set of "ip:port" local ends (from `ss -tn`)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "( dport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    ends = set()
    for line in out.splitlines():
        parts = line.split()
        # gRPC uses IPv6 sockets: IPv4 shows as [::ffff:127.0.0.1]:port.
        if len(parts) >= 4 and _unmapped(parts[3]) == "%s:%d" % (addr, port):
            ends.add(_unmapped(parts[2]))
    return ends


def _unmapped(end):
    """"[::ffff:1.2.3.4]:5" -> "1.2.3.4:5"; anything else as it is."""
    if end.startswith("[::ffff:") and "]:" in end:
        host, _, port = end[len("[::ffff:"):].partition("]:")
        if host.count(".") == 3:
            return "%s:%s" % (host, port)
    return end
