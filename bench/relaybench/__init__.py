"""The relay benchmark behind bench/relay: BIRD -> path -> BIRD on loopback
(full-table mode), our own generator -> path -> sink (--raw, --latency), for
the paths direct, socat, stunnel and kbgp.

Modules: context (temp dir, processes, ports), birdctl (BIRD's control
socket without forking birdc), fulltable (the routes file), daemons (sender
and receiver BIRD), paths (the relays), procstat (CPU and peak RSS from
/proc), stats (medians and percentiles), report (tables and targets), and
one module per mode (mode_table, mode_raw, mode_latency).

Process handling, ports, TLS material and the kbgp / kbgp-ingest wrappers
come from the e2e harness (tests/e2e/kbgptest), imported, not copied.
"""
