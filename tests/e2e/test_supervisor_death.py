#!/usr/bin/python3
"""The supervisor dies, and a worker crash-loops.

 1. kill -9 of the supervisor: its three workers exit by themselves within
    seconds (PR_SET_PDEATHSIG); the uplink KILLs its Data stream first, so
    kbgp-ingest ends the collector session at once instead of waiting for a
    resume; no TCP connection to the agent's port is left open at either
    end. A new kbgp on the same port (what systemd's Restart=on-failure
    does) takes the device's reconnect and the collector gets exactly the
    device's routes again.
 2. The listener is killed every time it comes up: after 10 restarts within
    60 s the supervisor stops restarting it, stops the other workers and
    exits with status 3, saying why.
"""
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kbgptest  # noqa: E402
from kbgptest import resilience  # noqa: E402
from kbgptest.kbgp import Agent  # noqa: E402
from kbgptest.procs import pid_alive  # noqa: E402
from kbgptest.routes import make_routes  # noqa: E402
from kbgptest.topology import Topology  # noqa: E402

DEVICE_IP, DEVICE_ASN = "127.0.0.3", 65003
CRASH_LOOP_EXIT = 3


def established_to(port):
    """TCP connections in state ESTABLISHED from or to 127.0.0.1:`port`."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d or dport = :%d )"
                          % (port, port)], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.strip()]


def test(ctx):
    routes = make_routes(1000, 100)
    topo = Topology(ctx)
    device = topo.start_standard("bird", DEVICE_IP, DEVICE_ASN, routes)
    agent = topo.agents[0]
    ingest = topo.ingest
    topo.wait_established(device)
    topo.wait_routes(device, routes)

    # 1. the supervisor dies
    workers = {p["comm"]: p["pid"] for p in agent.processes() if p["pid"] != agent.pid}
    ctx.check(len(workers) == 3, "want three workers, found %s" % workers)
    mark = ingest.log.mark()
    t = time.monotonic()
    os.kill(agent.pid, signal.SIGKILL)
    ctx.wait_until(lambda: not any(pid_alive(p) for p in workers.values()), 10,
                   "every worker to exit after the supervisor died",
                   describe=lambda: {n: p for n, p in workers.items() if pid_alive(p)})
    gone = time.monotonic() - t
    ctx.wait_until(lambda: ingest.log.find("agent sent KILL", since=mark, message="agent sent KILL"), 5,
                   "kbgp-ingest to get the uplink's KILL", describe=lambda: ingest.log.text(mark)[-1500:])
    ctx.wait_until(lambda: topo.collector.peer_info(DEVICE_IP)["state"] != "Established", 10,
                   "the collector to see the session end")
    ctx.wait_until(lambda: device.session_state() != "Established", 10,
                   "the device to see the session end")
    ctx.wait_until(lambda: not established_to(agent.listen_port), 10,
                   "no connection to the agent's port to stay open",
                   describe=lambda: established_to(agent.listen_port))
    ctx.check(not ingest.log.find("no resume within the grace period", since=mark),
              "kbgp-ingest waited for a resume instead of ending the session")
    ctx.step("supervisor killed: its workers exited within %.1f s (%s), the uplink sent KILL, the "
             "collector and the device saw the session end at once, no connection left open"
             % (gone, ", ".join(sorted(workers))))

    # systemd's Restart=on-failure: a new agent on the same port
    agent2 = Agent(ctx, ctx.binaries, agent.listen_port, ingest.port, topo.tls, agent.metrics_port,
                   name="kbgp-2")
    agent2.start()
    topo.agents.append(agent2)
    topo.wait_established(device, timeout=30)
    resilience.wait_exact(ctx, topo, device, routes)
    ctx.step("a new kbgp on the same port: the device reconnected, the collector holds exactly its "
             "%d routes" % len(routes))

    # 2. a crash loop
    killer = resilience.WorkerKiller(ctx, agent2)
    t = time.monotonic()
    kills = 0
    while agent2.proc.alive():
        try:
            pid = killer.wait_running("listener", timeout=15)
        except kbgptest.TestFailure:
            break  # the agent exited meanwhile (wait_running raises)
        os.kill(pid, signal.SIGKILL)
        kills += 1
        ctx.wait_until(lambda: not pid_alive(pid), 5, "the killed listener to be gone")
        if kills > 15:
            break
    status = agent2.proc.popen.wait(15)
    ctx.check(status == CRASH_LOOP_EXIT, "kbgp exited with status %s after %d listener kills; want %d "
              "(crash loop)" % (status, kills, CRASH_LOOP_EXIT))
    lines = agent2.log.find("crash loop")
    ctx.check(lines, "kbgp did not log why it gave up")
    ctx.check(kills == 11, "kbgp gave up after %d kills of the listener; want 11 (10 restarts within "
                           "60 s, then no more)" % kills)
    left = [p["pid"] for p in agent2.processes()] if agent2.proc.alive() else []
    ctx.check(not left, "processes left behind: %s" % left)
    ctx.step("listener killed whenever it came up: kbgp restarted it 10 times in %.0f s, then exited "
             "with status %d: %s" % (time.monotonic() - t, status, lines[-1][:200]))


if __name__ == "__main__":
    sys.exit(kbgptest.main(test, "test_supervisor_death", __doc__, needs_kbgp_path=True))
