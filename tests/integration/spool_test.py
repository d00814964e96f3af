"""Broker absent: the simulator spools every event within its timeout. Broker started on that
spool directory: every spooled event is delivered to the drop and the spool is emptied. A
corrupt spool file is moved to bad/ (never deleted) without blocking the others."""

import os

import crstest as t

COUNT = 500


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("spool") as tmp:
        config, settings = t.write_config(tmp, sinks=t.unique_sink(tmp))
        spool = settings["spool_dir"]
        p = t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--count",
                   str(COUNT), "--timeout-ms", "500", "--spool-dir", spool], tmp)
        t.log(p.stdout.strip())
        counts = t.parse_counts(p.stdout)
        if counts.get("spooled") != COUNT:
            t.fail("spooled %s of %d" % (counts.get("spooled"), COUNT))
        files = [n for n in os.listdir(spool) if n.endswith(".crev")]
        if len(files) != COUNT:
            t.fail("%d .crev files in the spool, want %d" % (len(files), COUNT))

        # One corrupt file among them, and a temporary file the drain must leave alone.
        with open(os.path.join(spool, "00000000-0000-7000-8000-000000000000.crev"), "wb") as f:
            f.write(b"\x00\x00\x00\x10not a frame at all")
        with open(os.path.join(spool, ".in-progress.crev.tmp"), "wb") as f:
            f.write(b"partial")

        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        out = tmp.join("out")
        t.wait_for(lambda: len([n for n in t.drop_files(out) if n.endswith(".json")]) == COUNT,
                   "%d JSON files in the drop" % COUNT, timeout=600, interval=0.2)
        t.wait_for(lambda: not [n for n in os.listdir(spool) if n.endswith(".crev")],
                   "the spool to be emptied", timeout=300)
        bad = os.path.join(spool, "bad", "00000000-0000-7000-8000-000000000000.crev")
        if not os.path.exists(bad):
            t.fail("corrupt spool file was not moved to bad/")
        if not os.path.exists(os.path.join(spool, ".in-progress.crev.tmp")):
            t.fail("a temporary file in the spool was touched")
        if "is corrupt" not in broker.log_text():
            t.fail("no log line for the corrupt spool file")
        t.check_once_per_event(out, settings["state_dir"], COUNT)

        # Spooling while the broker runs: the directory watch (or the rescan) picks it up.
        p = t.run([opts.certrelay, "simulate", "--pipe", tmp.join("nobroker.sock"), "--count",
                   "20", "--timeout-ms", "200", "--spool-dir", spool], tmp)
        t.wait_for(lambda: not [n for n in os.listdir(spool) if n.endswith(".crev")],
                   "spool files written while running to be drained", timeout=300)
        rows = t.db_rows(settings["state_dir"], "SELECT COUNT(*) FROM events")
        if rows[0][0] != COUNT + 20:
            t.fail("events table holds %d rows, want %d" % (rows[0][0], COUNT + 20))
        broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
