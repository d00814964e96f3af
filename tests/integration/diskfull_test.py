"""Full disks, for real (small tmpfs mounts; skipped where mounting is not allowed):

1. The queue's disk fills: the broker answers Nack with the reason instead of Ack, logs it and
   keeps running; every acked event is in the database, no nacked one is (the stub would have
   spooled those), and SIGTERM still stops it cleanly.
2. The drop directory's disk fills: deliveries are retried with "no space left on device" in
   last_error; once space is freed (the mount grows) they all complete."""

import os
import subprocess
import sys
import uuid

import crstest as t

SKIP = 77
BIG = 60 * 1024


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode == 0


def umount(path):
    subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def queue_full(opts, tmp):
    statefs = tmp.join("statefs")
    if not mount_tmpfs(statefs, "1m"):
        return False
    try:
        config, settings = t.write_config(tmp, state_dir=os.path.join(statefs, "state"))
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        c = t.Client(settings["listen"])
        c.hello()
        acked, nacked, reason = [], [], None
        junk = os.urandom(BIG)
        for i in range(200):
            eid = str(uuid.uuid4())
            c.send_event(t.event_bytes(eid, "issued", i + 1, der=junk))
            kind, got, why = c.answer()
            if got != eid:
                t.fail("answer for %s names %s" % (eid, got))
            if kind == "ack":
                acked.append(eid)
            else:
                nacked.append(eid)
                reason = why
                if len(nacked) >= 3:
                    break
        if not nacked:
            t.fail("a 1 MB queue disk took 200 events of 60 KB")
        t.log("queue disk full after %d acks; Nack reason: %s" % (len(acked), reason))
        if "full" not in reason:
            t.fail("the Nack reason does not say the disk is full: %r" % reason)
        if "group commit" not in broker.log_text():
            t.fail("the failed commit was not logged")
        # Still serving: a Hello on a new connection is accepted and answered.
        c2 = t.Client(settings["listen"])
        c2.hello()
        eid = str(uuid.uuid4())
        c2.send_event(t.event_bytes(eid, "denied", 9999))
        if c2.answer()[1] != eid:
            t.fail("no answer after the disk filled")
        c2.close()
        c.close()
        broker.stop_ok()
        ids = set(r[0] for r in t.db_rows(settings["state_dir"], "SELECT event_id FROM events"))
        if not set(acked) <= ids:
            t.fail("%d acked events are missing from the queue" % len(set(acked) - ids))
        if set(nacked) & ids:
            t.fail("a nacked event is in the queue")
        return True
    finally:
        umount(statefs)


def drop_full(opts, tmp):
    dropfs = tmp.join("dropfs")
    if not mount_tmpfs(dropfs, "256k"):
        return False
    try:
        out = os.path.join(dropfs, "out")
        config, settings = t.write_config(tmp, state_dir=tmp.join("state2"),
                                          listen=tmp.join("s2.sock"), sinks={"archive": {
                                              "type": "file", "directory": out,
                                              "max_attempts": "1000", "backoff_initial": "50ms",
                                              "backoff_max": "200ms"}})
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        c = t.Client(settings["listen"])
        c.hello()
        junk = os.urandom(BIG)
        for i in range(10):
            eid = str(uuid.uuid4())
            c.send_event(t.event_bytes(eid, "issued", i + 1, der=junk))
            if c.answer() != ("ack", eid, None):
                t.fail("event %d not acked" % (i + 1))
        c.close()
        state = settings["state_dir"]

        def enospc():
            rows = t.db_rows(state, "SELECT last_error FROM deliveries WHERE state = 0 AND "
                                    "attempts > 0")
            return [r[0] for r in rows if r[0] and "no space left on device" in r[0]]
        errs = t.wait_for(enospc, "a delivery retried for lack of space")
        t.log("drop full: %s" % errs[0])
        subprocess.run(["mount", "-o", "remount,size=8m", dropfs], check=True)
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 1")
                   [0][0] == 10, "every delivery once space is back")
        names = t.drop_files(out)
        if len(names) != 20 or any(n.startswith(".") for n in names):
            t.fail("want 10 .cer and 10 .json and no temporary files, got %s" % names)
        broker.stop_ok()
        return True
    finally:
        umount(dropfs)


def test():
    opts = t.args("certrelayd")
    with t.TempDir("diskfull") as tmp:
        if not queue_full(opts, tmp) or not drop_full(opts, tmp):
            t.log("SKIP: cannot mount tmpfs here")
            sys.exit(SKIP)


if __name__ == "__main__":
    t.main(test)
