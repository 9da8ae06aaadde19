"""BGP messages on the wire (RFC 4271, 4.1), for tests that talk BGP or read
captured streams themselves: building one message, and cutting a byte
stream that arrives in pieces into whole messages.

One splitter for every such test, so they all agree on what a whole message
and bad framing are (the agent's own rules are in src/common/bgp_framing.h;
these are deliberately simpler: any length from 19 up is whole once it is
all in, since a test reads what a BGP daemon or the agent sent)."""

import struct

MARKER = b"\xff" * 16
HEADER_LEN = 19


def bgp_message(msg_type, body=b""):
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), msg_type) + body


class BadFraming(Exception):
    """The stream is not BGP from `offset` on (no marker, or a length below
    the header's)."""

    def __init__(self, offset, why):
        super().__init__("bad BGP framing at byte %d: %s" % (offset, why))
        self.offset = offset


class MessageSplitter:
    """Whole BGP messages out of a byte stream fed in pieces of any size.

    feed() returns [(type, message)] (message: header included) for every
    message the new bytes complete and keeps the tail. It raises BadFraming
    at the first header that is not BGP; the bytes from there on stay in
    `pending`. Cost is linear in the bytes fed, however many small messages
    one piece holds."""

    def __init__(self):
        self.pending = b""
        self.offset = 0  # stream offset of pending[0]

    def feed(self, data):
        buf = self.pending + data if self.pending else bytes(data)
        out = []
        pos = 0  # an index, not slicing: 1 MiB of KEEPALIVEs must not cost O(n^2)
        try:
            while len(buf) - pos >= HEADER_LEN:
                if buf[pos:pos + 16] != MARKER:
                    raise BadFraming(self.offset + pos, "no marker")
                length = int.from_bytes(buf[pos + 16:pos + 18], "big")
                if length < HEADER_LEN:
                    raise BadFraming(self.offset + pos, "length %d" % length)
                if len(buf) - pos < length:
                    break
                out.append((buf[pos + 18], buf[pos:pos + length]))
                pos += length
        finally:
            self.pending = buf[pos:]
            self.offset += pos
        return out


def split_messages(data):
    """[(type, message)] of the whole messages in `data`; a partial message
    at its end is left out. Raises BadFraming."""
    return MessageSplitter().feed(data)
