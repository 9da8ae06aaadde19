#!/usr/bin/python3
"""SIGHUP re-reads the environment file (--env-file) of a live agent with a
BIRD session through it:

1. KENTIK_LOG_LEVEL info -> debug: one supervisor line "KENTIK_LOG_LEVEL:
   info -> debug" (key field), every worker says "log level changed", and
   the admin now logs its requests at debug (it did not before); variables
   read only at start (KENTIK_API_TOKEN, KENTIK_REGION) are reported as
   "needs a restart" by name, never by value; an unknown one as unused;
2. a file with bad lines: one error line per bad line (line number, key,
   no value), "not applied; nothing changed", and the level stays debug;
   a bad value (KENTIK_LOG_LEVEL=verbose): refused the same way;
3. the BGP session stayed up throughout: the same session id, none closed,
   the device and the collector still Established.

Automake exit codes: 0 pass, 1 fail, 77 skip (unless KBGP_E2E=1, as root,
with the binaries built).
"""
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest.net import http_get  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEVICE, DEVICE_ASN = "127.0.0.3", 65003
NEW_TOKEN = "reload-secret-0d5e"  # must never appear in a log line


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def admin_debug_lines(agent, since):
    return [obj for _, obj in agent.log.records(since)
            if obj and obj.get("component") == "admin" and obj.get("level") == "debug"
            and obj.get("message") == "admin request"]


def check_bad_file_at_start(ctx):
    """At start a bad file is refused like a bad flag: exit 2, a line per
    bad line, nothing started."""
    bad = ctx.path("bad.env")
    write(bad, "KENTIK_API_EMAIL=ops@example.com\nKENTIK_API_TOKEN=\"%s\nnot an assignment\n" % NEW_TOKEN)
    r = subprocess.run([ctx.binaries.kbgp, "--env-file", bad, "--listen", "127.0.0.1:1"],
                       capture_output=True, text=True, timeout=20)
    lines = r.stderr.splitlines()
    ctx.check(r.returncode == 2, "kbgp with a bad env file exited %d, want 2: %r" % (r.returncode, r.stderr))
    ctx.check(len(lines) == 2 and "line 2 (KENTIK_API_TOKEN): unterminated double quote" in lines[0]
              and "line 3: not KEY=VALUE" in lines[1], "start-up errors: %r" % lines)
    ctx.check(NEW_TOKEN not in r.stderr + r.stdout, "the token is in the start-up error")
    ctx.step("a bad env file at start: exit 2, %s" % lines[0])


def test(ctx):
    check_bad_file_at_start(ctx)
    env_file = ctx.path("kbgp.env")
    write(env_file, "# the agent's environment file\nKENTIK_LOG_LEVEL=info\nUNRELATED=1\n")
    topo = Topology(ctx)
    topo.start_collector([(DEVICE, DEVICE_ASN)])
    topo.start_ingest([DEVICE])
    agent = topo.start_agent(log_level=None, extra_args=["--env-file", env_file])
    routes = make_routes(50, 5)
    device = topo.start_device("bird", DEVICE, DEVICE_ASN, routes)
    topo.wait_established(device, timeout=30)
    topo.wait_routes(device, routes, timeout=30)
    session_id = agent.sessions()["Sessions"][0]["SessionID"]
    ctx.step("session %s up; the agent logs at info (from %s)" % (session_id, env_file))

    mark = agent.log.mark()
    http_get(agent.url("/hc"))
    time.sleep(0.5)
    ctx.check(not admin_debug_lines(agent, mark), "the admin logs requests at debug before the SIGHUP")

    # 1. Raise the level; change variables that need a restart.
    write(env_file, "# the agent's environment file\nKENTIK_LOG_LEVEL=debug\nUNRELATED=2\n"
                    "KENTIK_API_TOKEN='%s'\nKENTIK_REGION=fra1\n" % NEW_TOKEN)
    mark = agent.log.mark()
    os.kill(agent.pid, signal.SIGHUP)
    ctx.wait_until(lambda: agent.log.find("KENTIK_LOG_LEVEL: info -> debug", since=mark,
                                          component="supervisor", key="KENTIK_LOG_LEVEL"),
                   10, "the supervisor's line KENTIK_LOG_LEVEL: info -> debug")
    for worker in ("listener", "uplink", "admin"):
        ctx.wait_until(lambda: agent.log.find("log level changed", since=mark, component=worker, to="debug"),
                       10, "the %s to switch to debug" % worker)
    for key in ("KENTIK_API_TOKEN", "KENTIK_REGION"):
        ctx.check(agent.log.find("%s changed in the environment file; needs a restart" % key, since=mark,
                                 component="supervisor", key=key),
                  "no 'needs a restart' line for %s" % key)
    ctx.check(agent.log.find("UNRELATED changed in the environment file; not used by kbgp", since=mark),
              "no 'not used' line for UNRELATED")
    http_get(agent.url("/hc"))
    ctx.wait_until(lambda: admin_debug_lines(agent, mark), 10, "the admin to log its request at debug")
    ctx.step("SIGHUP: supervisor and workers at debug (admin request logged at debug); the token "
             "and the region reported as needing a restart")

    # 2. Bad files change nothing.
    write(env_file, "KENTIK_LOG_LEVEL=info\nthis line has no equals sign\n"
                    "KENTIK_API_TOKEN='%s\n" % NEW_TOKEN)
    mark = agent.log.mark()
    os.kill(agent.pid, signal.SIGHUP)
    ctx.wait_until(lambda: agent.log.find("environment file not applied; nothing changed", since=mark),
                   10, "the supervisor to refuse the bad file")
    bad = agent.log.find("bad line in the environment file", since=mark, component="supervisor")
    ctx.check(len(bad) == 2, "want 2 bad-line errors, got %d: %s" % (len(bad), bad))
    ctx.check(agent.log.find("bad line", since=mark, line="2"), "line 2 not named")
    ctx.check(agent.log.find("unterminated single quote", since=mark, line="3", key="KENTIK_API_TOKEN"),
              "line 3 (KENTIK_API_TOKEN, unterminated quote) not named")
    write(env_file, "KENTIK_LOG_LEVEL=verbose\n")
    mark = agent.log.mark()
    os.kill(agent.pid, signal.SIGHUP)
    ctx.wait_until(lambda: agent.log.find("KENTIK_LOG_LEVEL", since=mark, level="error"), 10,
                   "the supervisor to refuse KENTIK_LOG_LEVEL=verbose")
    ctx.check(not agent.log.find("-> info", since=mark), "a bad file changed the log level")
    before = agent.log.mark()
    http_get(agent.url("/hc"))
    ctx.wait_until(lambda: admin_debug_lines(agent, before), 10, "the admin to still log at debug")
    ctx.step("bad files: one error per bad line, nothing applied, still at debug")

    # The token never reached a log line.
    ctx.check(NEW_TOKEN not in agent.log.text(), "the token from the environment file is in the log")

    # 3. The session stayed up.
    listing = agent.sessions()
    ctx.check(listing["NumSessions"] == 1 and listing["Sessions"][0]["SessionID"] == session_id,
              "the session changed: %r" % listing)
    ctx.check(not agent.log.find("session closed"), "a session closed during the SIGHUPs")
    ctx.check(device.established(), "the device is no longer Established")
    ctx.check(topo.collector.peer_info(DEVICE)["state"] == "Established", "the collector lost the session")
    ctx.step("session %s stayed up through 3 SIGHUPs" % session_id)


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_sighup", __doc__))
