"""The ingest path against a real broker: the answers of one group commit are written together,
one write per connection, and each still carries its own event id; a client that closes with
events in the commit loses none of them; a group whose transaction fails is nacked event by
event and nothing of it is stored, and the same events sent again are all acked once; the
simulator's --prebuilt load is acked event by event with distinct ids."""

import os
import re
import sqlite3
import subprocess
import threading
import uuid

import crstest as t


def pipelined(sock, events):
    """Sends every event on one connection before reading any answer; returns the answers."""
    c = t.Client(sock, timeout=60)
    c.hello()
    c.send(b"".join(t.frame(t.event_payload(ev)) for _, ev in events))
    answers = [c.answer() for _ in events]
    c.close()
    return answers


def make_events(n, first_request_id):
    out = []
    for i in range(n):
        eid = str(uuid.uuid4())
        out.append((eid, t.event_bytes(eid, "denied", first_request_id + i)))
    return out


def count_events(state_dir):
    return t.db_rows(state_dir, "SELECT COUNT(*) FROM events")[0][0]


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("ingest") as tmp:
        config, settings = t.write_config(tmp, sinks={})
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        sock = settings["listen"]

        # (a) 300 events pipelined on one connection: the broker commits them in a few groups
        # and answers each group in one write; every answer is an Ack naming its own event, in
        # the order sent.
        events = make_events(300, 1)
        answers = pipelined(sock, events)
        want = [("ack", eid, None) for eid, _ in events]
        if answers != want:
            bad = [(i, a) for i, (a, w) in enumerate(zip(answers, want)) if a != w][:3]
            t.fail("pipelined answers differ from the events sent: %r" % bad)
        t.log("300 pipelined events: 300 acks, in order, each with its own id")

        # (b) 8 connections pipelining 60 events each at once: groups mix connections, and
        # each connection gets exactly its own 60 acks.
        batches = [make_events(60, 1000 + 100 * k) for k in range(8)]
        results = [None] * 8

        def run(k):
            results[k] = pipelined(sock, batches[k])

        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        for k in range(8):
            if results[k] != [("ack", eid, None) for eid, _ in batches[k]]:
                t.fail("connection %d got answers that are not its own acks: %r" %
                       (k, (results[k] or [])[:3]))
        t.log("8 connections x 60 pipelined events: each got its own 60 acks")

        # (c) a client that closes right after sending 200 events, with them in the commit:
        # all 200 are stored (the stub would find them acked as duplicates when it resends
        # from its spool), and the broker keeps answering others.
        gone = make_events(200, 5000)
        c = t.Client(sock)
        c.hello()
        c.send(b"".join(t.frame(t.event_payload(ev)) for _, ev in gone))
        c.close()
        ids = [eid for eid, _ in gone]
        t.wait_for(lambda: t.db_rows(
            state, "SELECT COUNT(*) FROM events WHERE event_id IN (%s)" %
            ",".join("?" * len(ids)), ids)[0][0] == 200,
            "the 200 events of the closed connection stored", 60)
        t.send_acked(sock, make_events(3, 6000))
        t.log("connection closed mid-group: its 200 events are stored, the broker answers on")

        # (d) a commit that fails: another process holds the database's write lock, so the
        # broker's BEGIN IMMEDIATE fails after its busy timeout. Every event of the group gets a
        # Nack with its own id, none is stored; sent again once the lock is gone, all are acked
        # and stored exactly once.
        before = count_events(state)
        failing = make_events(20, 7000)
        holder = sqlite3.connect(os.path.join(state, "certrelay.db"), timeout=30,
                                 isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            answers = pipelined(sock, failing)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        for (eid, _), (kind, got, reason) in zip(failing, answers):
            if kind != "nack" or got != eid or not reason or "database" not in reason:
                t.fail("event %s under a failing commit answered %r" % (eid, (kind, got, reason)))
        if count_events(state) != before:
            t.fail("nacked events were stored: %d rows, want %d" % (count_events(state), before))
        t.log("failing commit: 20 nacks with their own ids (%r), nothing stored" % answers[0][2])
        answers = pipelined(sock, failing)
        if answers != [("ack", eid, None) for eid, _ in failing]:
            t.fail("resent events not all acked: %r" % answers[:3])
        if count_events(state) != before + 20:
            t.fail("after the resend: %d rows, want %d" % (count_events(state), before + 20))
        t.log("resent after the lock: 20 acks, stored once")

        # (e) the simulator's benchmark load: copies of one prebuilt event with fresh ids, each
        # acked and stored as its own event.
        before = count_events(state)
        out = subprocess.run([opts.certrelay, "simulate", "--pipe", sock, "--spool-dir",
                              tmp.join("spool"), "--count", "400", "--concurrency", "8",
                              "--prebuilt"], stdout=subprocess.PIPE, text=True, timeout=120,
                             env=t.child_env(tmp))
        counts = dict(re.findall(r"^(sent|acked|spooled|failed) (\d+)$", out.stdout, re.M))
        if out.returncode != 0 or counts.get("acked") != "400":
            t.fail("simulate --prebuilt: exit %d, %s" % (out.returncode, out.stdout))
        if count_events(state) != before + 400:
            t.fail("simulate --prebuilt stored %d events, want 400" % (count_events(state) - before))
        kinds = t.db_rows(state, "SELECT COUNT(DISTINCT event_id) FROM events")[0][0]
        if kinds != count_events(state):
            t.fail("event ids are not distinct")
        t.log("simulate --prebuilt: 400 acked, 400 distinct events stored")

        broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
