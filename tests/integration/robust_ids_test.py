"""Issue 13, item 8: event ids are canonical and never silently reused.

- The same id with different content is refused with a Nack that says so, and logged; the
  stored event is untouched. Before: acked and silently dropped.
- An upper-case spelling of a stored id is the same event: acked, stored once, delivered once
  (before: stored again and delivered twice). A new upper-case id is stored lower-case.
- A plain resend of the same event is acked and stored once (idempotence is kept).
- A spool file whose id belongs to a different stored event is moved to bad/, not retried.
- Ids that are not UUIDs close the connection."""

import os
import time
import uuid

import crstest as t


def test():
    opts = t.args("certrelayd")
    with t.TempDir("robust_ids") as tmp:
        config, settings = t.write_config(tmp, sinks=t.unique_sink(tmp))
        state, spool, out = settings["state_dir"], settings["spool_dir"], tmp.join("out")
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        try:
            c = t.Client(settings["listen"])
            c.hello()
            eid = str(uuid.uuid4())
            first = t.event_bytes(eid, "issued", 1, common_name="first")
            c.send_event(first)
            if c.answer() != ("ack", eid, None):
                t.fail("first event not acked")
            # Same id, other content.
            c.send_event(t.event_bytes(eid, "issued", 2, common_name="impostor"))
            kind, got, why = c.answer()
            if kind != "nack" or got != eid or "already used" not in (why or ""):
                t.fail("a reused id was answered %r" % ((kind, got, why),))
            if "refused: its id is already stored with different content" not in \
                    broker.log_text():
                t.fail("the refusal is not logged")
            # Resend of the same event, and its upper-case spelling: one event.
            c.send_event(first)
            if c.answer()[0] != "ack":
                t.fail("a plain resend was not acked")
            up = eid.upper()
            c.send_event(first.replace(eid.encode(), up.encode()))
            kind, got, _ = c.answer()
            if kind != "ack" or got.lower() != eid:
                t.fail("the upper-case spelling was answered %r" % ((kind, got),))
            # A new upper-case id is stored lower-case.
            new = str(uuid.uuid4())
            c.send_event(t.event_bytes(new.upper(), "denied", 3))
            if c.answer()[0] != "ack":
                t.fail("a new upper-case id was not acked")
            rows = t.db_rows(state, "SELECT event_id FROM events ORDER BY rowid")
            if [r[0] for r in rows] != [eid, new]:
                t.fail("stored ids %s, want [%s, %s]" % (rows, eid, new))
            # Not a UUID: the connection is closed.
            c.send_event(t.event_bytes("g" * 8 + str(uuid.uuid4())[8:], "issued", 4))
            if not c.closed_by_peer():
                t.fail("an invalid id did not close the connection")
            c.close()
            # A spool file carrying the reused id with other content.
            with open(os.path.join(spool, ".x"), "wb") as f:
                f.write(t.frame(t.event_payload(t.event_bytes(eid, "issued", 9,
                                                              common_name="spooled"))))
            os.rename(os.path.join(spool, ".x"), os.path.join(spool, eid + ".crev"))
            t.wait_for(lambda: os.path.exists(os.path.join(spool, "bad", eid + ".crev")),
                       "the conflicting spool file to be moved to bad/")
            t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE "
                                                "state = 1")[0][0] == 2, "both deliveries")
            time.sleep(0.5)
            docs = t.check_once_per_event(out, state, 2)
            for d in docs.values():
                if d["event_id"] == eid and d["certificate"].get("common_name") != "first":
                    t.fail("the stored event was replaced: %r" % d)
        finally:
            broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
