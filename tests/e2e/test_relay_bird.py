#!/usr/bin/python3
"""BIRD device -> kbgp -> kbgp-ingest (TLS) -> collector BIRD: 10,000 IPv4
/24s and 1,000 IPv6 /48s arrive with their attributes intact, withdrawals
follow, the status API and the process layout are right.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built). `--path direct` runs the same checks without kbgp.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import scenarios  # noqa: E402


def test(ctx):
    scenarios.relay(ctx, "bird", 10000, 1000)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_relay_bird", __doc__, needs_kbgp_path=False))
