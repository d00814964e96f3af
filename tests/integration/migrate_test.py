"""Schema migration: a version-1 queue database (no attempts table) is upgraded when the broker
starts, keeps its rows, and records the attempts of new deliveries.

The version-1 schema below is the one brokers before the attempts history created; the test builds
it with Python's sqlite3, holding one delivered event, then runs a real broker on it.
"""

import os
import sqlite3
import uuid

import crstest as t

V1_SCHEMA = """
CREATE TABLE events (rowid INTEGER PRIMARY KEY, event_id TEXT UNIQUE NOT NULL,
    kind INTEGER NOT NULL, received_ms INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE deliveries (event_rowid INTEGER NOT NULL, sink TEXT NOT NULL,
    state INTEGER NOT NULL, attempts INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL,
    last_error TEXT, last_status INTEGER, updated_ms INTEGER NOT NULL,
    PRIMARY KEY (event_rowid, sink));
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_sink_due ON deliveries (sink, state, next_attempt_ms);
PRAGMA user_version = 1;
"""


def test():
    opts = t.args("certrelayd")
    with t.TempDir("migrate") as tmp:
        config, settings = t.write_config(tmp, sinks={
            "archive": {"type": "file", "directory": tmp.join("out"), "name": t.NAME_PER_EVENT}})
        state = settings["state_dir"]
        os.makedirs(state, exist_ok=True)
        path = os.path.join(state, "certrelay.db")
        old_id = str(uuid.uuid4())
        db = sqlite3.connect(path)
        db.executescript(V1_SCHEMA)
        db.execute("INSERT INTO events VALUES (1, ?, 1, 1000, x'00')", (old_id,))
        db.execute("INSERT INTO deliveries VALUES (1, 'archive', 1, 1, 1000, NULL, 0, 1000)")
        db.commit()
        db.close()

        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        eid = t.send_one(settings["listen"], 7)
        t.wait_for(lambda: len(t.json_docs(tmp.join("out"))) == 1, "the delivery")
        broker.stop_ok()

        db = sqlite3.connect(path)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != 4:
                t.fail("user_version after start is %d, want 4" % version)
            ids = sorted(r[0] for r in db.execute("SELECT event_id FROM events"))
            if ids != sorted([old_id, eid]):
                t.fail("events after the migration: %r" % ids)
            rows = db.execute("SELECT e.event_id, a.sink, a.attempt, a.outcome, a.error "
                              "FROM attempts a JOIN events e ON e.rowid = a.event_rowid").fetchall()
            if rows != [(eid, "archive", 1, 1, None)]:
                t.fail("attempts after one delivery: %r" % rows)
        finally:
            db.close()


if __name__ == "__main__":
    t.main(test)
