#!/usr/bin/python3
"""Self-test of the end-to-end harness, without kbgp: the direct path
(BIRD device -> collector BIRD, FRR bgpd device -> collector BIRD) passes
every check the relay tests make; the TLS material verifies for localhost
and 127.0.0.1 (and not for another name); processes are stopped by PID with
SIGKILL after the timeout, stray group members included; the scan for
sanitizer reports in process logs finds them and nothing else; the BGP
message splitter the tests share cuts streams right.

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
from kbgptest import bgpwire, frr, procs, sanitizers, scenarios  # noqa: E402
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


def check_message_splitter(ctx):
    # Every test that reads BGP itself (bad-device, extended-message and
    # resilience tests) cuts streams with this splitter.
    msgs = [bgpwire.bgp_message(1 + i % 4, bytes(i % 97)) for i in range(400)]
    data = b"".join(msgs)
    for piece in (1, 7, 19, 4096):
        splitter, got = bgpwire.MessageSplitter(), []
        for i in range(0, len(data), piece):
            got += splitter.feed(data[i:i + piece])
        ctx.check([m for _, m in got] == msgs and [t for t, _ in got] == [m[18] for m in msgs],
                  "splitter, pieces of %d bytes: %d messages back of %d" % (piece, len(got), len(msgs)))
        ctx.check(splitter.pending == b"" and splitter.offset == len(data),
                  "splitter, pieces of %d bytes: left %d bytes, offset %d"
                  % (piece, len(splitter.pending), splitter.offset))
    ctx.check(bgpwire.split_messages(data[:-1]) == [(m[18], m) for m in msgs[:-1]],
              "a partial last message is not left out")
    for bad, why in ((b"\x00" * 19, "no marker"), (bgpwire.MARKER + b"\x00\x12\x04", "length 18")):
        splitter = bgpwire.MessageSplitter()
        try:
            splitter.feed(msgs[0] + bad)
            ctx.check(False, "splitter took %r after a message" % bad)
        except bgpwire.BadFraming as e:
            ctx.check(e.offset == len(msgs[0]) and why in str(e) and splitter.pending == bad,
                      "splitter on %r: %s, pending %r" % (bad, e, splitter.pending))
    ctx.step("BGP message splitter: 400 messages back whole in pieces of 1 to 4096 bytes; no marker "
             "and a length below 19 are bad framing at the right offset")


def test(ctx):
    check_message_splitter(ctx)
    check_sanitizer_scan(ctx)
    check_process_stop(ctx)
    check_tls(ctx)
    scenarios.relay(ctx, "bird", 2000, 200, tag="bird_")
    scenarios.relay(ctx, "frr", 2000, 200, tag="frr_")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_harness", __doc__, needs_kbgp_path=False, path="direct",
                           tools=("bird", "birdc", "openssl", "ps", "vtysh", frr.BGPD)))
