"""Independent witnesses of what crosses loopback: packet sockets on `lo`
(root), each read by a thread. SynWatcher records every inbound IPv4 TCP
SYN (no ACK) to the given ports with whether it carries the TCP-MD5 option
(kind 19); TcpStreams reassembles the bytes of every connection of a port.
Outgoing copies (lo shows every packet twice) are skipped."""

import ctypes
import socket
import struct
import threading
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SKF_AD_OFF = -0x1000
SKF_AD_PROTOCOL = 0
SKF_AD_PKTTYPE = 4


def _syn_filter():
    """Classic BPF: inbound IPv4 TCP SYNs without ACK, nothing else. Without
    it the socket would queue every packet on lo (BGP updates, gRPC) and
    drop SYNs when the reader falls behind."""
    ld_w_abs, ld_b_abs, ldx_msh, ld_b_ind = 0x20, 0x30, 0xb1, 0x50
    and_k, jeq_k, ret_k = 0x54, 0x15, 0x06
    anc = lambda what: (SKF_AD_OFF + what) & 0xffffffff  # noqa: E731
    insns = [
        (ld_w_abs, 0, 0, anc(SKF_AD_PKTTYPE)),
        (jeq_k, 8, 0, PACKET_OUTGOING),   # -> drop
        (ld_w_abs, 0, 0, anc(SKF_AD_PROTOCOL)),
        (jeq_k, 0, 6, ETH_P_IP),          # else drop
        (ld_b_abs, 0, 0, 9),
        (jeq_k, 0, 4, 6),                 # TCP, else drop
        (ldx_msh, 0, 0, 0),
        (ld_b_ind, 0, 0, 13),
        (and_k, 0, 0, 0x12),
        (jeq_k, 1, 0, 0x02),              # SYN without ACK -> accept
        (ret_k, 0, 0, 0),
        (ret_k, 0, 0, 256),
    ]
    return insns


def _md5_option(options):
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            return False
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            return False
        if kind == 19:
            return True
        i += options[i + 1]
    return False


class _PacketCapture:
    """A packet socket on `interface` (root) with a classic BPF filter
    attached before it binds, read by a thread that hands every inbound IPv4
    TCP segment to _segment(data, ihl) with `data` the IP packet."""

    def __init__(self, insns, interface, max_packet, rcvbuf_opt, rcvbuf, name):
        self._max_packet = max_packet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Protocol 0 receives nothing until bind: the filter is in place first.
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        self._prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
        fprog = struct.pack("HL", len(insns), ctypes.addressof(self._prog))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._sock.setsockopt(socket.SOL_SOCKET, rcvbuf_opt, rcvbuf)
        self._sock.bind((interface, ETH_P_ALL))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(self._max_packet)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[1] != ETH_P_IP or addr[2] == PACKET_OUTGOING or len(data) < 20:
                continue
            ihl = (data[0] & 0x0F) * 4
            if data[9] != 6 or len(data) < ihl + 20:
                continue
            self._segment(data, ihl)


class SynWatcher(_PacketCapture):
    def __init__(self, ports, interface="lo"):
        self.ports = set(ports)
        self.interface = interface
        self.syns = []  # (monotonic time, src ip, src port, dst port, md5)
        super().__init__(_syn_filter(), interface, 256, socket.SO_RCVBUF, 1 << 22, "syn-watcher")

    def _segment(self, data, ihl):
        sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
        flags = data[ihl + 13]
        if dport not in self.ports or (flags & 0x12) != 0x02:
            return
        doff = (data[ihl + 12] >> 4) * 4
        md5 = _md5_option(data[ihl + 20:ihl + doff])
        src = socket.inet_ntoa(data[12:16])
        with self._lock:
            self.syns.append((time.monotonic(), src, sport, dport, md5))

    def from_source(self, ip, md5=None):
        """The SYNs seen from `ip` (only signed / unsigned ones if md5 is
        True / False)."""
        with self._lock:
            return [s for s in self.syns if s[1] == ip and (md5 is None or s[4] == md5)]



def _port_filter(port):
    """Classic BPF: inbound IPv4 TCP segments from or to `port`, whole
    (up to 256 KiB: lo carries segments of up to 64 KiB)."""
    ld_w_abs, ld_b_abs, ldx_msh, ld_h_ind = 0x20, 0x30, 0xb1, 0x48
    jeq_k, ret_k = 0x15, 0x06
    anc = lambda what: (SKF_AD_OFF + what) & 0xffffffff  # noqa: E731
    return [
        (ld_w_abs, 0, 0, anc(SKF_AD_PKTTYPE)),
        (jeq_k, 9, 0, PACKET_OUTGOING),   # -> drop
        (ld_w_abs, 0, 0, anc(SKF_AD_PROTOCOL)),
        (jeq_k, 0, 7, ETH_P_IP),          # else drop
        (ld_b_abs, 0, 0, 9),
        (jeq_k, 0, 5, 6),                 # TCP, else drop
        (ldx_msh, 0, 0, 0),
        (ld_h_ind, 0, 0, 0),              # source port
        (jeq_k, 3, 0, port),              # -> accept
        (ld_h_ind, 0, 0, 2),              # destination port
        (jeq_k, 1, 0, port),              # -> accept
        (ret_k, 0, 0, 0),
        (ret_k, 0, 0, 1 << 18),
    ]


class TcpStreams(_PacketCapture):
    """An independent witness of what crossed the wire: every TCP segment
    from or to `port` on lo (a packet socket, root), reassembled per
    direction of each connection from the sequence numbers. Only
    connections whose SYN it saw are kept: start it before them."""

    def __init__(self, port, interface="lo"):
        self.port = port
        self._flows = {}  # (src ip, src port, dst ip, dst port) -> [isn, [(seq, payload)]]
        # Big: a burst of 64 KiB segments must not be dropped (a hole in a
        # stream is reported, but the test would fail).
        super().__init__(_port_filter(port), interface, 1 << 18, SO_RCVBUFFORCE, 1 << 26,
                         "tcp-streams")

    def _segment(self, data, ihl):
        total = struct.unpack("!H", data[2:4])[0]
        sport, dport, seq = struct.unpack("!HHI", data[ihl:ihl + 8])
        doff = (data[ihl + 12] >> 4) * 4
        flags = data[ihl + 13]
        key = (socket.inet_ntoa(data[12:16]), sport, socket.inet_ntoa(data[16:20]), dport)
        payload = data[ihl + doff:total]
        with self._lock:
            if flags & 0x02:  # SYN (either side's): the stream starts after it
                self._flows[key] = [(seq + 1) & 0xffffffff, []]
            elif payload and key in self._flows:
                self._flows[key][1].append((seq, bytes(payload)))

    def connections(self, ip):
        """[(src ip, src port, dst ip, dst port)] of every direction seen
        with `ip` at either end, in the order their SYNs came."""
        with self._lock:
            return [k for k in self._flows if ip in (k[0], k[2])]

    def stream(self, key):
        """The bytes of one direction from its start: (bytes, hole) where
        `hole` is None, or the offset of the first byte never seen (the
        bytes stop there)."""
        with self._lock:
            isn, segments = self._flows[key][0], list(self._flows[key][1])
        buf = bytearray()
        pending = {}
        for seq, payload in segments:
            off = (seq - isn) & 0xffffffff
            if len(payload) > len(pending.get(off, b"")):
                pending[off] = payload
        for off in sorted(pending):
            payload = pending[off]
            if off > len(buf):
                return bytes(buf), len(buf)
            if off + len(payload) > len(buf):
                buf += payload[len(buf) - off:]
        return bytes(buf), None
