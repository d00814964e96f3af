"""Crash safety: while the simulator sends a long run, the broker is killed with SIGKILL several
times and restarted over its stale socket each time (the simulator spools what was not acked
meanwhile). At the end every event, acked or spooled, is delivered exactly once: one set of files
per request id, one events row per event id, no event id twice."""

import os
import subprocess
import time

import crstest as t

COUNT = int(os.environ.get("CRS_CRASH_COUNT", "6000"))
KILLS = 4


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("crash") as tmp:
        # The event id in the name keeps crl_issued events (which have no request id) apart.
        config, settings = t.write_config(tmp, sinks=t.unique_sink(tmp))
        state, spool, out = settings["state_dir"], settings["spool_dir"], tmp.join("out")
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        sim_out = open(tmp.join("simulate.out"), "wb")
        sim = subprocess.Popen([opts.certrelay, "simulate", "--pipe", settings["listen"],
                                "--count", str(COUNT), "--concurrency", "8", "--timeout-ms",
                                "1000", "--spool-dir", spool],
                               stdout=sim_out, stderr=subprocess.STDOUT, env=t.child_env(tmp))

        def committed():
            try:
                return t.db_rows(state, "SELECT COUNT(*) FROM events")[0][0]
            except Exception:
                return 0

        kills = 0
        for k in range(1, KILLS + 1):
            # Kill at growing points of the run, judged by progress rather than by the clock.
            target = COUNT * k // (KILLS + 2)
            t.wait_for(lambda: sim.poll() is not None or committed() >= target,
                       "%d events committed" % target, timeout=600, interval=0.02)
            if sim.poll() is not None:
                break
            broker.kill9()
            kills += 1
            t.log("kill -9 #%d with %d events committed" % (kills, committed()))
            time.sleep(0.2)
            broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
            if "removing stale socket" not in broker.log_text():
                t.fail("restart did not report the stale socket")

        rc = sim.wait(1800)
        sim_out.close()
        with open(tmp.join("simulate.out")) as f:
            text = f.read()
        t.log(text.strip()[-600:])
        if rc != 0:
            t.fail("simulate exited with %d" % rc)
        counts = t.parse_counts(text)
        if counts.get("acked", 0) + counts.get("spooled", 0) != COUNT:
            t.fail("acked + spooled != %d: %s" % (COUNT, counts))
        if kills < 2:
            t.fail("the run ended before the broker could be killed twice (%d)" % kills)

        # One more crash-free restart is not needed: the running broker drains the spool.
        t.wait_for(lambda: not [n for n in os.listdir(spool) if n.endswith(".crev")],
                   "the spool to be drained", timeout=600, interval=0.2)
        t.wait_for(lambda: committed() == COUNT and t.db_rows(
            state, "SELECT COUNT(*) FROM deliveries WHERE state != 1")[0][0] == 0,
            "every event to be committed and delivered", timeout=900, interval=0.5)

        t.check_once_per_event(out, state, COUNT)
        leftovers = [n for n in t.drop_files(out) if n.startswith(".")]
        if leftovers:
            t.fail("temporary files left in the drop: %s" % leftovers[:5])
        broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
