"""Issue 13, item 7: the file drop never reports delivered what is not on disk as the event's own.

1. Names cut at the length limit: three events whose common names agree on their first 250
   bytes (before: one file for the three, all marked delivered) each get their own set.
2. Two events rendering the same name: the second set goes to "<name>-<event_id>" whole (before:
   the first's .cer beside the second's .json), and each file holds its own event's bytes.
3. A regular file, and a directory, already at the name: left untouched, the set goes to the
   fallback name (before: overwritten, and "input/output error").
4. Both names taken: the delivery fails permanently with "file name collision", never delivered.
5. Bidi overrides and zero-width characters are removed from names.
6. The drop directory replaced by a symbolic link after start: not followed; retried with an
   error saying so, and delivered once the directory is back."""

import json
import os
import shutil
import uuid

import crstest as t


def delivered(state, n, what):
    t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state != 0")[0][0]
               >= n, what)


def own_files(out, eid, der):
    """The .json and .cer files that hold this event (by content), by name."""
    found = {}
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        if name.endswith(".json"):
            with open(path, "rb") as f:
                try:
                    doc = json.loads(f.read())
                except ValueError:
                    continue
                if doc.get("event_id") == eid:
                    found[".json"] = name
        elif name.endswith(".cer"):
            with open(path, "rb") as f:
                if f.read() == der:
                    found[".cer"] = name
    return found


def test():
    opts = t.args("certrelayd")
    with t.TempDir("robust_drop") as tmp:
        out = tmp.join("out")
        sinks = {"drop": {"type": "file", "directory": out, "name": "{{common_name}}",
                          "backoff_initial": "50ms", "backoff_max": "100ms"}}
        config, settings = t.write_config(tmp, sinks=sinks)
        state, sock = settings["state_dir"], settings["listen"]
        broker = t.Broker(opts.certrelayd, config, tmp, sock).start()
        try:
            sent = 0
            # 1 and 2: long names agreeing up to the cut, and one name twice.
            events = []
            for i in range(3):
                eid, der = str(uuid.uuid4()), os.urandom(300)
                events.append((eid, der, "x" * 250 + "-%d" % i + "y" * 40))
            for i in range(2):
                eid, der = str(uuid.uuid4()), os.urandom(300)
                events.append((eid, der, "same"))
            t.send_acked(sock, [(e, t.event_bytes(e, "issued", 10 + i, common_name=cn, der=der))
                        for i, (e, der, cn) in enumerate(events)])
            sent += len(events)
            delivered(state, sent, "the first events")
            for eid, der, cn in events:
                files = own_files(out, eid, der)
                if sorted(files) != [".cer", ".json"]:
                    t.fail("event %s (%s...) has files %s" % (eid, cn[:10], files))
                if files[".cer"][:-4] != files[".json"][:-5]:
                    t.fail("event %s's set is split: %s" % (eid, files))
            if "is taken by another event or file" not in broker.log_text():
                t.fail("the collision is not logged")
            t.log("cut and repeated names: 5 events, 5 complete sets")

            # 3. A file and a directory already in the way.
            with open(os.path.join(out, "taken.json"), "w") as f:
                f.write("someone else's\n")
            os.mkdir(os.path.join(out, "dir.json"))
            extra = []
            for cn in ("taken", "dir"):
                eid, der = str(uuid.uuid4()), os.urandom(100)
                extra.append((eid, der, cn))
            t.send_acked(sock, [(e, t.event_bytes(e, "issued", 20 + i, common_name=cn, der=der))
                        for i, (e, der, cn) in enumerate(extra)])
            sent += 2
            delivered(state, sent, "events whose names are taken")
            with open(os.path.join(out, "taken.json")) as f:
                if f.read() != "someone else's\n":
                    t.fail("an existing file was overwritten")
            for eid, der, cn in extra:
                files = own_files(out, eid, der)
                if files.get(".json") != "%s-%s.json" % (cn, eid):
                    t.fail("event with name %r landed in %s" % (cn, files))
            # 4. Both names taken: a loud permanent failure, not a delivery.
            eid = str(uuid.uuid4())
            os.mkdir(os.path.join(out, "both.json"))
            os.mkdir(os.path.join(out, "both-%s.json" % eid))
            t.send_acked(sock, [(eid, t.event_bytes(eid, "issued", 30, common_name="both"))])
            sent += 1
            delivered(state, sent, "the doubly taken event")
            st, err = t.db_rows(state, "SELECT d.state, d.last_error FROM deliveries d JOIN "
                                       "events e ON e.rowid = d.event_rowid WHERE "
                                       "e.event_id = ?", (eid,))[0]
            if st != 2 or "file name collision" not in err:
                t.fail("both names taken: state %d, %r" % (st, err))
            t.log("taken names: fallback used, then a permanent failure: %s" % err)

            # 5. Invisible and bidi characters.
            eid = str(uuid.uuid4())
            t.send_acked(sock, [(eid, t.event_bytes(eid, "issued", 40,
                                            common_name="invoice\u202efdp\u200b.exe\u2066x"))])
            sent += 1
            delivered(state, sent, "the bidi name")
            if "invoicefdp.exex.json" not in os.listdir(out):
                t.fail("format characters kept in names: %s" % [n for n in os.listdir(out)
                                                                if n.startswith("inv")])

            # 6. The drop directory swapped for a link.
            elsewhere = tmp.join("elsewhere")
            os.mkdir(elsewhere)
            os.rename(out, tmp.join("out.moved"))
            os.symlink(elsewhere, out)
            eid = str(uuid.uuid4())
            t.send_acked(sock, [(eid, t.event_bytes(eid, "issued", 50, common_name="linked"))])
            t.wait_for(lambda: (t.db_rows(state, "SELECT MAX(attempts) FROM deliveries d JOIN "
                                                 "events e ON e.rowid = d.event_rowid WHERE "
                                                 "e.event_id = ?", (eid,))[0][0] or 0) >= 2,
                       "attempts at the linked directory")
            if os.listdir(elsewhere):
                t.fail("files were written through the link: %s" % os.listdir(elsewhere))
            err = t.db_rows(state, "SELECT last_error FROM deliveries d JOIN events e ON "
                                   "e.rowid = d.event_rowid WHERE e.event_id = ?", (eid,))[0][0]
            if "symbolic link" not in (err or ""):
                t.fail("the link is not named in the error: %r" % err)
            os.unlink(out)
            os.rename(tmp.join("out.moved"), out)
            sent += 1
            delivered(state, sent, "the event once the directory is back")
            if "linked.json" not in os.listdir(out):
                t.fail("not delivered once the directory was back")
        finally:
            broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
