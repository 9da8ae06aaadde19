#!/usr/bin/python3
"""Log and metrics export (docs/export.md), end to end: kbgp's uplink POSTs
gzip'd batches over HTTPS to kbgp-ingest's export endpoint, which stores them
under --export-dir.

1. an agent relaying a BIRD device exports its log lines: NDJSON, one JSON
   object per line with time, level, message, service and component, from
   all four processes (supervisor, listener, uplink, admin), among them the
   "accepted device connection" line of the session; the batch files carry
   the agent's instance id; the token is in no stored file;
2. its metrics arrive too: the Prometheus text of /metrics (one session
   active) plus the exporter's own counters;
3. with --human-logs the journal gets the human form and the export still
   gets JSON;
4. with --disable-log-export no log batch arrives (metrics still do);
5. a wrong token: kbgp-ingest refuses the export (401) and the agent says
   so in one clear line; the session of the first agent never noticed.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEV, ASN = "127.0.0.3", 65003
HUMAN_DEV, HUMAN_ASN = "127.0.0.4", 65004
COMPONENTS = {"supervisor", "listener", "uplink", "admin"}
NO_PROXY_ENV = {k: None for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}


def stored(export_dir, kind, instance=None):
    """[(path, text)] of stored batches of `kind`, oldest first."""
    d = os.path.join(export_dir, kind)
    out = []
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".tmp") or (instance and not name.startswith(instance + "-")):
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            out.append((os.path.join(d, name), f.read()))
    return out


def exported_lines(export_dir, instance):
    lines = []
    for path, text in stored(export_dir, "logs", instance):
        for raw in text.splitlines():
            lines.append((path, raw, json.loads(raw)))
    return lines


def test(ctx):
    export_dir = ctx.path("exports")
    topo = Topology(ctx)
    topo.start_collector([(DEV, ASN), (HUMAN_DEV, HUMAN_ASN)])
    export_port = ctx.free_port()
    ingest = topo.start_ingest([DEV, HUMAN_DEV], extra_args=[
        "--export-listen", "127.0.0.1:%d" % export_port, "--export-dir", export_dir])
    ctx.wait_until(lambda: ingest.log.find("export endpoint listening"), 10,
                   "kbgp-ingest to open its export endpoint")
    # By name (certificate name check, SNI) for logs, by address for metrics.
    urls = ["--log-export-url", "https://localhost:%d/agents/v202204/logs" % export_port,
            "--metrics-export-url", "https://127.0.0.1:%d/agents/v202204/metrics" % export_port]

    # 1. Logs of a relaying agent.
    agent = topo.start_agent(name="kbgp", extra_args=urls, env=NO_PROXY_ENV)
    instance = agent.status()["InstanceID"]
    routes = make_routes(100, 10)
    dev = topo.start_device("bird", DEV, ASN, routes, agent=agent)
    topo.wait_established(dev, timeout=30)
    topo.wait_routes(dev, routes, timeout=30)

    def have_all():
        lines = exported_lines(export_dir, instance)
        comps = {obj.get("component") for _, _, obj in lines}
        accepted = [obj for _, _, obj in lines if obj.get("message") == "accepted device connection"]
        return lines if COMPONENTS <= comps and accepted else None
    lines = ctx.wait_until(have_all, 30, "exported log lines of all four processes, with the device's "
                           "connection", describe=lambda: "stored: %s" % [p for p, _ in stored(export_dir, "logs")])
    for path, raw, obj in lines:
        for key in ("time", "level", "message", "service", "component"):
            ctx.check(key in obj, "exported line without %r in %s: %s" % (key, path, raw))
    accepted = [obj for _, _, obj in lines if obj.get("message") == "accepted device connection"][0]
    ctx.check(accepted.get("peer-addr", "").startswith(DEV + ":"),
              "the exported 'accepted device connection' line has peer-addr %r" % accepted.get("peer-addr"))
    ctx.step("%d log lines exported in %d batches from %s; e.g. %s" % (
        len(lines), len(stored(export_dir, "logs", instance)), sorted(COMPONENTS), json.dumps(accepted)))
    ctx.check(ingest.log.find("stored an export batch", kind="logs", instance=instance),
              "kbgp-ingest did not log a stored log batch for instance %s" % instance)

    # 2. Metrics (the first export comes ~10 s after start).
    def metrics_with_session():
        for path, text in stored(export_dir, "metrics", instance):
            if "kbgp_sessions_active 1" in text and "kbgp_log_export_lines_total" in text:
                return path, text
        return None
    path, text = ctx.wait_until(metrics_with_session, 40, "a metrics export showing one active session")
    ctx.check("# TYPE kbgp_sessions_active gauge" in text, "no TYPE line in the exported metrics")
    ctx.step("metrics exported: %s (%d lines)" % (os.path.basename(path), text.count("\n")))

    for kind in ("logs", "metrics"):
        for p, t in stored(export_dir, kind):
            ctx.check(agent.token not in t, "the API token is in the stored export %s" % p)
    ctx.step("the API token is in no stored export")

    # 3. --human-logs: human journal, JSON export.
    human = topo.start_agent(name="kbgp-human", extra_args=urls + ["--human-logs"], env=NO_PROXY_ENV)
    human_instance = human.status()["InstanceID"]
    hdev = topo.start_device("bird", HUMAN_DEV, HUMAN_ASN, make_routes(10, 0), agent=human)
    topo.wait_established(hdev, timeout=30)
    ctx.check(human.log.find(" INF accepted device connection"),
              "kbgp --human-logs did not write the human form of 'accepted device connection'")
    ctx.wait_until(lambda: [o for _, _, o in exported_lines(export_dir, human_instance)
                            if o.get("message") == "accepted device connection"], 30,
                   "the --human-logs agent's export to hold the JSON form of 'accepted device connection'")
    ctx.step("--human-logs: human lines in the journal, JSON lines in the export")
    hdev.stop()
    human.stop()

    # 4. --disable-log-export: metrics only.
    quiet = topo.start_agent(name="kbgp-nologs", extra_args=urls + ["--disable-log-export"], env=NO_PROXY_ENV)
    quiet_instance = quiet.status()["InstanceID"]
    ctx.wait_until(lambda: stored(export_dir, "metrics", quiet_instance), 40,
                   "a metrics export from the agent with --disable-log-export")
    ctx.check(not stored(export_dir, "logs", quiet_instance),
              "log batches arrived from the agent with --disable-log-export")
    ctx.step("--disable-log-export: metrics exported, no log batch")
    quiet.stop()

    # 5. A wrong token: refused, said clearly.
    wrong = topo.start_agent(name="kbgp-wrongtoken", token="not-the-token", extra_args=urls, env=NO_PROXY_ENV)
    line = ctx.wait_until(lambda: wrong.log.find("log export refused: 401", level="error"), 30,
                          "the agent with a wrong token to log 'log export refused: 401'")
    ctx.step("wrong token: %s" % line[0].strip())
    ctx.check(ingest.log.find("export refused: bad credentials"),
              "kbgp-ingest did not log the refused export")
    wrong.stop()

    ctx.check(dev.established(), "the first device's session went down meanwhile")
    topo.check_routes(dev, routes)
    ctx.step("the first agent's session carried on undisturbed")


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_export", __doc__))
