#!/usr/bin/python3
"""Self-test of the end-to-end harness, without kbgp: the direct path
(BIRD device -> collector BIRD, FRR bgpd device -> collector BIRD) passes
every check the relay tests make; the TLS material verifies for localhost
and 127.0.0.1 (and not for another name); processes are stopped by PID with
SIGKILL after the timeout, stray group members included; the scan for
sanitizer reports in process logs finds them and nothing else.

When a kbgp-path test fails and this one passes, the fault is not in the
harness or the BGP daemons.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root).
"""
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import frr, procs, sanitizers, scenarios  # noqa: E402
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


def check_sanitizer_scan(ctx):
    # Outside ctx.dir: the runner scans that one after the test.
    work = tempfile.mkdtemp(prefix="kbgp-e2e-sanscan-")
    try:
        samples = {
            "clean.log": "bird: Started\nkbgp: session ended: runtime error budget 3\n",
            "asan.log": "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020\n",
            "ubsan.log": "../src/common/ring.cc:40:7: runtime error: signed integer overflow\n",
            "sub/lsan.log": "==17==ERROR: LeakSanitizer: detected memory leaks\n",
        }
        for name, text in samples.items():
            os.makedirs(os.path.dirname(os.path.join(work, name)), exist_ok=True)
            with open(os.path.join(work, name), "w") as f:
                f.write(text)
        found = sorted(os.path.relpath(path, work) for path, _ in sanitizers.reports_in(work))
        ctx.check(found == ["asan.log", "sub/lsan.log", "ubsan.log"],
                  "the sanitizer report scan found %s" % found)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ctx.step("sanitizer report scan: ASan, UBSan and LSan reports found, nothing else")


def test(ctx):
    check_sanitizer_scan(ctx)
    check_process_stop(ctx)
    check_tls(ctx)
    scenarios.relay(ctx, "bird", 2000, 200, tag="bird_")
    scenarios.relay(ctx, "frr", 2000, 200, tag="frr_")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_harness", __doc__, needs_kbgp_path=False, path="direct",
                           tools=("bird", "birdc", "openssl", "ps", "vtysh", frr.BGPD)))
