#!/usr/bin/python3
"""A minimal BGP speaker pair for measuring relays without BGP daemons.

  gen   connects (from --bind) to a relay or the sink, completes OPEN /
        KEEPALIVE, then sends pre-built UPDATEs: as fast as the path takes
        them (--messages N), or one at a time at a low rate with the send
        time inside (--rate R, latency mode).
  sink  listens, completes OPEN / KEEPALIVE with whoever connects (the
        generator or a relay speaking for it), then counts UPDATE bytes
        until --expect-bytes arrived (raw), or takes every message apart
        and records its one-way delay (latency).

Neither side is a BGP implementation: no routes are kept, no hold timer
runs (hold time 240 s covers every run). Each writes a JSON result file
when done (atomically, so the caller polls for it). Times are
CLOCK_MONOTONIC nanoseconds (time.monotonic_ns), one clock for every
process on the host, so the generator's send time and the sink's receive
time compare directly.

The UPDATEs look like a full table's: ORIGIN, a 4-octet AS_PATH, NEXT_HOP,
one COMMUNITY and one LARGE_COMMUNITY, and --prefixes-per-update /24s
(1: 69 bytes a message; the BIRD sender's full table in bench/relay averages
~1.1 prefixes and ~56 bytes per UPDATE). Raw mode repeats a block of 4096
distinct messages; relays do not look inside.
In latency mode the LARGE_COMMUNITY carries (65003, send_ns >> 32,
send_ns & 0xffffffff) and the COMMUNITY the sequence number.

Python is enough: the data path is sendall()/recv_into() of large buffers,
with no per-message work in raw mode (bench/README.md has the measured
ceiling of the direct path).
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time
import zlib

MARKER = b"\xff" * 16
OPEN, UPDATE, NOTIFICATION, KEEPALIVE = 1, 2, 3, 4
HOLD_TIME = 240
BLOCK_MESSAGES = 4096


class ProtocolError(Exception):
    pass


def message(msg_type, body=b""):
    return MARKER + struct.pack("!HB", 19 + len(body), msg_type) + body


def open_message(asn, router_id):
    caps = (b"\x01\x04\x00\x01\x00\x01"               # multiprotocol IPv4 unicast
            + b"\x41\x04" + struct.pack("!I", asn))   # 4-octet AS
    opt = b"\x02" + bytes([len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack("!BHH4sB", 4, my_as, HOLD_TIME, socket.inet_aton(router_id), len(opt)) + opt
    return message(OPEN, body)


def keepalive():
    return message(KEEPALIVE)


def update(prefixes24, asn, community, large):
    """An UPDATE announcing /24s (first three octets given as ints)."""
    attrs = (b"\x40\x01\x01\x00"                                        # ORIGIN IGP
             + b"\x40\x02\x06\x02\x01" + struct.pack("!I", asn)         # AS_PATH: SEQ [asn]
             + b"\x40\x03\x04" + socket.inet_aton("192.0.2.3")          # NEXT_HOP
             + b"\xc0\x08\x04" + struct.pack("!I", community)           # COMMUNITIES
             + b"\xc0\x20\x0c" + struct.pack("!III", *large))           # LARGE_COMMUNITY
    nlri = b"".join(b"\x18" + struct.pack("!I", p)[1:] for p in prefixes24)
    return message(UPDATE, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri)


def update_block(asn, per_update, count=BLOCK_MESSAGES):
    """`count` distinct UPDATEs, concatenated."""
    out = []
    for i in range(count):
        base = (16 << 16) + i * per_update
        out.append(update(range(base, base + per_update), asn, (asn << 16) | (i & 0xffff), (asn, i, 1)))
    return b"".join(out)


class Reader:
    """BGP messages from a socket, one at a time, with the bytes received
    past the last message kept."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ProtocolError("connection closed by the peer")
        self.buf += chunk
        return time.monotonic_ns()

    def next(self):
        while True:
            if len(self.buf) >= 19:
                if self.buf[:16] != MARKER:
                    raise ProtocolError("bad marker")
                length, msg_type = struct.unpack_from("!HB", self.buf, 16)
                if length < 19:
                    raise ProtocolError("bad length %d" % length)
                if len(self.buf) >= length:
                    msg = bytes(self.buf[:length])
                    del self.buf[:length]
                    return msg_type, msg
            self.fill()


def handshake(reader, sock, my_open):
    """Sends our OPEN, waits for the peer's OPEN, sends KEEPALIVE, waits for
    the peer's KEEPALIVE. A NOTIFICATION is an error."""
    sock.sendall(my_open)
    got_open = False
    while True:
        msg_type, msg = reader.next()
        if msg_type == NOTIFICATION:
            raise ProtocolError("peer sent NOTIFICATION %s" % msg[19:21].hex())
        if msg_type == OPEN and not got_open:
            got_open = True
            sock.sendall(keepalive())
        elif msg_type == KEEPALIVE and got_open:
            return
        else:
            raise ProtocolError("unexpected message type %d during the handshake" % msg_type)


def write_result(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


def addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def set_nodelay(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---- generator -------------------------------------------------------------

def gen(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((args.bind, 0))
    set_nodelay(sock)
    deadline = time.monotonic() + args.connect_timeout
    while True:
        try:
            sock.connect(addr(args.connect))
            break
        except (ConnectionRefusedError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            sock.close()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((args.bind, 0))
            set_nodelay(sock)
    reader = Reader(sock)
    handshake(reader, sock, open_message(args.asn, args.bind))
    t_established = time.monotonic_ns()
    result = {"established_ns": t_established}
    if args.rate:
        result.update(gen_latency(sock, args))
    else:
        result.update(gen_raw(sock, args))
    write_result(args.result, result)
    # Stay connected until stopped: a close would end the session while the
    # last bytes may still be inside a relay.
    sock.settimeout(1.0)
    while True:
        try:
            if not sock.recv(65536):
                return 0
        except socket.timeout:
            continue


def gen_raw(sock, args):
    block = update_block(args.asn, args.prefixes_per_update)
    per_block = BLOCK_MESSAGES
    full, rest = divmod(args.messages, per_block)
    tail = b""
    if rest:
        # The first `rest` messages of the block, cut at message boundaries.
        off = 0
        for _ in range(rest):
            off += struct.unpack_from("!H", block, off + 16)[0]
        tail = block[:off]
    total = full * len(block) + len(tail)
    crc = 0
    if args.verify:
        for _ in range(full):
            crc = zlib.crc32(block, crc)
        crc = zlib.crc32(tail, crc)
    t0 = time.monotonic_ns()
    for _ in range(full):
        sock.sendall(block)
    if tail:
        sock.sendall(tail)
    t1 = time.monotonic_ns()
    return {"mode": "raw", "messages": args.messages, "bytes": total, "start_ns": t0, "sent_ns": t1,
            "crc32": crc if args.verify else None,
            "message_bytes": len(block) // per_block}


def gen_latency(sock, args):
    interval_ns = int(1e9 / args.rate)
    next_ns = time.monotonic_ns() + interval_ns
    prefixes = range(16 << 16, (16 << 16) + args.prefixes_per_update)
    for seq in range(args.messages):
        now = time.monotonic_ns()
        if next_ns > now:
            time.sleep((next_ns - now) / 1e9)
        t = time.monotonic_ns()
        sock.sendall(update(prefixes, args.asn, seq, (args.asn, t >> 32, t & 0xffffffff)))
        next_ns += interval_ns
    return {"mode": "latency", "messages": args.messages, "rate": args.rate}


# ---- sink ------------------------------------------------------------------

def sink(args):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(addr(args.listen))
    lsock.listen(4)
    lsock.settimeout(args.timeout)
    sock, peer = lsock.accept()
    lsock.close()
    set_nodelay(sock)
    sock.settimeout(args.timeout)
    reader = Reader(sock)
    handshake(reader, sock, open_message(args.asn, args.router_id))
    result = {"peer": "%s:%d" % peer, "established_ns": time.monotonic_ns()}
    if args.latency:
        result.update(sink_latency(reader, args))
    else:
        result.update(sink_raw(sock, reader, args))
    write_result(args.result, result)
    sock.settimeout(1.0)
    while True:  # keep the session until stopped
        try:
            if not sock.recv(65536):
                return 0
        except socket.timeout:
            continue


def sink_raw(sock, reader, args):
    want = args.expect_bytes
    got = len(reader.buf)
    crc = zlib.crc32(reader.buf) if args.verify else None
    t_first = time.monotonic_ns() if got else None
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while got < want:
        n = sock.recv_into(buf)
        if n == 0:
            raise ProtocolError("closed after %d of %d bytes" % (got, want))
        if t_first is None:
            t_first = time.monotonic_ns()
        if crc is not None:
            crc = zlib.crc32(view[:n], crc)
        got += n
    t_last = time.monotonic_ns()
    return {"mode": "raw", "bytes": got, "first_ns": t_first, "last_ns": t_last, "crc32": crc}


def sink_latency(reader, args):
    delays = []
    seqs = []
    while len(delays) < args.expect_messages:
        msg_type, msg = reader.next()
        now = time.monotonic_ns()
        if msg_type != UPDATE:
            continue
        # Attributes start at 19 + 2 (withdrawn length, 0) + 2 (attr length).
        off = 23
        seq = None
        sent = None
        end = 23 + struct.unpack_from("!H", msg, 21)[0]
        while off < end:
            flags, code = msg[off], msg[off + 1]
            if flags & 0x10:
                alen = struct.unpack_from("!H", msg, off + 2)[0]
                off += 4
            else:
                alen = msg[off + 2]
                off += 3
            if code == 8:
                seq = struct.unpack_from("!I", msg, off)[0]
            elif code == 32:
                _, hi, lo = struct.unpack_from("!III", msg, off)
                sent = (hi << 32) | lo
            off += alen
        if sent is None:
            raise ProtocolError("an UPDATE without a timestamp")
        delays.append(now - sent)
        seqs.append(seq)
    return {"mode": "latency", "delays_ns": delays, "seqs": seqs}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen", help="connect, handshake, send UPDATEs")
    g.add_argument("--connect", required=True, help="IP:PORT of the relay or sink")
    g.add_argument("--bind", default="127.0.0.3", help="source address (the device's)")
    g.add_argument("--asn", type=int, default=65003)
    g.add_argument("--messages", type=int, default=1000000)
    g.add_argument("--prefixes-per-update", type=int, default=1)
    g.add_argument("--rate", type=float, default=0, help="messages/s with timestamps (latency mode)")
    g.add_argument("--verify", action="store_true", help="CRC32 of the stream (costs CPU)")
    g.add_argument("--connect-timeout", type=float, default=20)
    g.add_argument("--result", required=True)
    s = sub.add_parser("sink", help="listen, handshake, count UPDATE bytes")
    s.add_argument("--listen", required=True, help="IP:PORT")
    s.add_argument("--asn", type=int, default=65001)
    s.add_argument("--router-id", default="127.0.0.2")
    s.add_argument("--expect-bytes", type=int, default=0)
    s.add_argument("--expect-messages", type=int, default=0)
    s.add_argument("--latency", action="store_true")
    s.add_argument("--verify", action="store_true")
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("--result", required=True)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return gen(args) if args.cmd == "gen" else sink(args)
    except (ProtocolError, OSError) as e:
        print("bgpgen %s: %s" % (args.cmd, e), file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
