"""A client for BIRD's control socket, kept open between commands.

birdc forks a process per command (a few ms of CPU each); the benchmark
polls two daemons every few milliseconds while a table moves, on a machine
with two cores, so it talks the socket protocol itself: one command line
in, reply lines "NNNN-text" / " text" (continuations) up to a line
"NNNN text" (the last). Codes 8xxx and 9xxx are errors.
"""

import re
import socket

from kbgptest.bird import parse_protocol_info

_FINAL = re.compile(rb"^(\d{4}) ")
_CODED = re.compile(rb"^(\d{4})[ -]")


class BirdCtlError(Exception):
    pass


class _Closed(BirdCtlError):
    """BIRD closed the connection (EOF)."""


class BirdCtl:
    def __init__(self, path, timeout=30.0):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise BirdCtlError("cannot connect to %s: %s" % (self.path, e)) from e
        self.sock = s
        self.buf = b""
        self._read_reply()  # the greeting: "0001 BIRD x.y.z ready."
        return self

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed("BIRD closed its control socket %s" % self.path)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def _read_reply(self):
        lines = []
        code = None
        while True:
            line = self._line()
            m = _CODED.match(line)
            if m:
                code = int(m.group(1))
                text = line[5:]
            else:
                text = line[1:] if line.startswith(b" ") else line
            lines.append(text.decode("utf-8", "replace"))
            if _FINAL.match(line):
                break
        if code is not None and code >= 8000:
            raise BirdCtlError("BIRD answered %d: %s" % (code, " | ".join(lines)))
        return lines

    def command(self, text):
        """Sends one command; returns the reply's lines without codes. A
        connection BIRD closed meanwhile (it was idle a while) is opened
        again once: the benchmark's commands are all safe to repeat."""
        for attempt in (1, 2):
            if self.sock is None:
                self.connect()
            try:
                self.sock.sendall(text.encode() + b"\n")
                return self._read_reply()
            except (BrokenPipeError, ConnectionResetError, _Closed):
                self.close()
                if attempt == 2:
                    raise BirdCtlError("BIRD closed its control socket %s" % self.path)
            except (OSError, BirdCtlError):
                self.close()
                raise

    def poke(self):
        """Any command wakes BIRD's main loop (BIRD 2.0.12 may otherwise
        hold its last UPDATE batch back for up to ~3 s when idle)."""
        self.command("show status")

    def protocol(self, name):
        """{"state": BGP state, "routes": {channel: imported}, ...} of a BGP
        protocol (kbgptest.bird.parse_protocol_info)."""
        return parse_protocol_info(self.command("show protocols all %s" % name))

    def static_routes(self, names):
        """Routes imported by static protocols `names` (their sum)."""
        return sum(sum(self.protocol(name)["routes"].values()) for name in names)
