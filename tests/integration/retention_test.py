"""Retention: with `retention = 1s`, 200,000 events through a file sink leave the queue database
bounded, and `certrelay status` reports it.

Without retention the database would hold every event (about 1.5 KB each here: 300 MB). The bound
checked: certrelay.db stays below 32 MiB (incremental vacuum hands freed pages back) and its WAL
below 64 MiB (journal_size_limit) plus one forced checkpoint's worth; at the end the events and
deliveries tables are empty and status counts every event as pruned.

The sink writes to tmpfs when there is one (/dev/shm), one file name per event kind, so the test
measures the queue and not the disk the drop lands on.
"""

import os
import shutil
import subprocess
import tempfile
import json

import crstest as t

COUNT = int(os.environ.get("CRS_RETENTION_EVENTS", "200000"))
ROUNDS = 10
DB_BOUND = 32 << 20
WAL_BOUND = (64 << 20) + (16 << 20)


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("retention") as tmp:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        out = tempfile.mkdtemp(prefix="crs-retention-out-", dir=shm)
        try:
            config, settings = t.write_config(tmp, retention="1s", dead_retention="1s", sinks={
                "archive": {"type": "file", "directory": out, "name": "{{event}}",
                            "der": "false", "concurrency": "16"}})
            state = settings["state_dir"]
            broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

            def status():
                p = t.run([opts.certrelay, "status", "--config", config, "--json"], tmp)
                return json.loads(p.stdout)

            def sizes():
                db = os.path.getsize(os.path.join(state, "certrelay.db"))
                wal_path = os.path.join(state, "certrelay.db-wal")
                wal = os.path.getsize(wal_path) if os.path.exists(wal_path) else 0
                return db, wal

            peak_db = peak_wal = 0
            for r in range(ROUNDS):
                p = t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--count",
                           str(COUNT // ROUNDS), "--concurrency", "16"], tmp)
                counts = t.parse_counts(p.stdout)
                if counts.get("acked") != COUNT // ROUNDS:
                    t.fail("round %d: %r" % (r + 1, counts))
                db, wal = sizes()
                peak_db, peak_wal = max(peak_db, db), max(peak_wal, wal)
                t.log("round %d: certrelay.db %d bytes, WAL %d bytes" % (r + 1, db, wal))

            def drained():
                st = status()
                d = st["database"]
                return st if d["events"] == 0 and d["pruned"] == COUNT else None
            st = t.wait_for(drained, "every event to be delivered and pruned",
                            timeout=t.DEFAULT_TIMEOUT * 3)
            db, wal = sizes()
            peak_db, peak_wal = max(peak_db, db), max(peak_wal, wal)
            t.log("status database: %r; peak certrelay.db %d, peak WAL %d" % (
                st["database"], peak_db, peak_wal))
            if st["database"]["deliveries"] != 0 or st["sinks"][0]["dead"] != 0:
                t.fail("rows left after pruning: %r" % st)
            if st["database"]["bytes"] > db:
                t.fail("status reports %d bytes, the file has %d" % (st["database"]["bytes"], db))
            if peak_db > DB_BOUND:
                t.fail("certrelay.db reached %d bytes, bound %d" % (peak_db, DB_BOUND))
            if peak_wal > WAL_BOUND:
                t.fail("the WAL reached %d bytes, bound %d" % (peak_wal, WAL_BOUND))
            out_st = status()
            if out_st["sinks"][0]["pending"] != 0:
                t.fail("deliveries still pending")
            broker.stop_ok()
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    t.main(test)
