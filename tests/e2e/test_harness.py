#!/usr/bin/python3
"""Self-test of the end-to-end harness, without kbgp: the direct path
(BIRD device -> collector BIRD, FRR bgpd device -> collector BIRD) passes
every check the relay tests make; the TLS material verifies for localhost
and 127.0.0.1 (and not for another name); processes are stopped by PID with
SIGKILL after the timeout, stray group members included.

When a kbgp-path test fails and this one passes, the fault is not in the
harness or the BGP daemons.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root).
"""
import os
import socket
import ssl
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import frr, procs, scenarios  # noqa: E402
from kbgptest.tls import make_tls  # noqa: E402


def check_tls(ctx):
    t = make_tls(ctx.path("tls"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(t.server_cert, t.server_key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve():
        for _ in range(3):
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as s:
                    s.recv(1)
            except (ssl.SSLError, OSError):
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for name in ("localhost", "127.0.0.1"):
            client = ssl.create_default_context(cafile=t.ca_cert)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with client.wrap_socket(raw, server_hostname=name) as s:
                    s.sendall(b"x")
                    cert = s.getpeercert()
            ctx.check(cert is not None, "no peer certificate for %s" % name)
        client = ssl.create_default_context(cafile=t.ca_cert)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            try:
                client.wrap_socket(raw, server_hostname="not-this-host.example").close()
                raise kbgptest.TestFailure("the server certificate verified for a wrong name")
            except ssl.SSLCertVerificationError:
                pass
    finally:
        listener.close()
    ctx.step("TLS material: ECDSA P-256 CA + server cert verify for localhost and 127.0.0.1 only")


def check_process_stop(ctx):
    stubborn = ctx.spawn("stubborn", ["sh", "-c", "trap '' TERM; echo TRAP''SET; sleep 60 & wait; sleep 60"])
    ctx.wait_until(lambda: "TRAPSET" in open(ctx.log_path("stubborn")).read(), 5, "the stubborn shell's trap")
    status = stubborn.stop(timeout=1)
    ctx.check(status == -9, "a process ignoring SIGTERM ended with %s, want -9 (SIGKILL)" % status)
    leaver = ctx.spawn("leaver", ["sh", "-c", "sleep 60 & exec sleep 61"])
    ctx.wait_until(lambda: len(procs.process_tree(leaver.pid)) == 2, 5, "the leaver's child to start")
    child = procs.process_tree(leaver.pid)[1]["pid"]
    leaver.stop(timeout=5)
    ctx.check(leaver.stray_group_members, "the stray child in the group went unnoticed")
    ctx.wait_until(lambda: not procs.pid_alive(child), 5, "the stray child to be killed")
    ctx.step("process stop: SIGTERM, SIGKILL after the timeout, stray group members killed")


def test(ctx):
    check_process_stop(ctx)
    check_tls(ctx)
    scenarios.relay(ctx, "bird", 2000, 200, tag="bird_")
    scenarios.relay(ctx, "frr", 2000, 200, tag="frr_")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_harness", __doc__, needs_kbgp_path=False, path="direct",
                           tools=("bird", "birdc", "openssl", "ps", "vtysh", frr.BGPD)))
