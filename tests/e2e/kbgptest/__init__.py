"""End-to-end test harness for kbgp: real BGP daemons (BIRD, FRR bgpd),
kbgp-ingest and kbgp on loopback, driven from Python's standard library.

Modules: procs (processes), net (ports, waits, HTTP), tls (openssl), routes
(what devices announce), bird / frr (daemons and queries), kbgp (the
project's binaries and logs), topology (the whole path), scenarios (test
bodies shared by several tests), testing (the runner and exit codes).
"""

from .errors import SkipTest, TestFailure
from .testing import main

__all__ = ["main", "SkipTest", "TestFailure"]
