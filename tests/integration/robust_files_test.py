"""Issue 13, items 3 and 6: files the broker opens from paths it does not own.

1. The spool drain meets hostile entries: a FIFO named x.crev (it blocked the drain for ever,
   and SIGTERM with it), 600 dangling and looping symbolic links sorting before the good files
   (they used up every batch: 100% CPU, nothing drained, 220 MB of log), a directory and a
   device node named *.crev, a link to a valid spool file outside the spool. Every good file is
   drained, every hostile entry is moved to bad/ (links as links), the log stays small, a second
   round does not log them again, and SIGTERM stops the broker with exit 0.
2. A FIFO (or a directory, or a character device) given as the configuration file itself, as a
   webhook secret_file, an email body_file or password_file, or as log_file: check-config and
   the broker refuse it with a message naming the path, never hang (before: SIGTERM ignored)."""

import os
import subprocess
import uuid

import crstest as t

GOOD = 20
LINKS = 600


def spool_frame(eid, rid):
    return t.frame(t.event_payload(t.event_bytes(eid, "issued", rid)))


def hostile_spool(opts, tmp):
    spool = tmp.join("spool")
    os.makedirs(spool)
    outside = tmp.join("outside.crev")
    with open(outside, "wb") as f:
        f.write(spool_frame(str(uuid.uuid4()), 999))
    # Names beginning with "0" sort before the good files' UUIDs (which begin with "1".."f" here).
    for i in range(LINKS // 2):
        os.symlink(tmp.join("nowhere-%d" % i), os.path.join(spool, "0a%05d.crev" % i))
        os.symlink("0b%05d.crev" % i, os.path.join(spool, "0b%05d.crev" % i))  # loops
    os.mkfifo(os.path.join(spool, "0fifo.crev"))
    os.mkdir(os.path.join(spool, "0dir.crev"))
    os.mknod(os.path.join(spool, "0null.crev"), 0o600 | 0o020000, os.makedev(1, 3))
    os.symlink(outside, os.path.join(spool, "0outside.crev"))
    ids = []
    for i in range(GOOD):
        eid = "f" + str(uuid.uuid4())[1:]
        ids.append(eid)
        with open(os.path.join(spool, eid + ".crev"), "wb") as f:
            f.write(spool_frame(eid, i + 1))

    config, settings = t.write_config(tmp, spool_dir=spool, sinks={})
    broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
    try:
        state = settings["state_dir"]
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM events")[0][0] == GOOD,
                   "the good spool files to be drained", timeout=60)
        got = set(r[0] for r in t.db_rows(state, "SELECT event_id FROM events"))
        if got != set(ids):
            t.fail("drained %d events, not the %d good ones" % (len(got), GOOD))
        t.wait_for(lambda: not [n for n in os.listdir(spool) if n.endswith(".crev")],
                   "every entry to leave the spool", timeout=60)
        bad = os.listdir(os.path.join(spool, "bad"))
        if len(bad) != LINKS + 4:
            t.fail("%d entries in bad/, want %d" % (len(bad), LINKS + 4))
        if not os.path.islink(os.path.join(spool, "bad", "0outside.crev")):
            t.fail("a link was followed instead of moved")
        if not os.path.exists(outside):
            t.fail("the link's target outside the spool was touched")
        size = len(broker.log_text())
        t.log("hostile spool: %d good drained, %d entries moved aside, %d bytes of log" % (
            GOOD, len(bad), size))
        if size > 16 * 1024:
            t.fail("%d bytes of log for %d hostile entries" % (size, LINKS + 4))
        # More arriving later is still drained (the drain is not stuck).
        eid = str(uuid.uuid4())
        with open(os.path.join(spool, ".tmp-x"), "wb") as f:
            f.write(spool_frame(eid, 500))
        os.rename(os.path.join(spool, ".tmp-x"), os.path.join(spool, eid + ".crev"))
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM events WHERE event_id = ?",
                                     (eid,))[0][0] == 1, "a later spool file", timeout=60)
    finally:
        rc = broker.stop(timeout=30)
    if rc != 0:
        t.fail("broker exited with %d after SIGTERM" % rc)


def refuses(opts, tmp, config, what, needle, checked=False):
    """The broker must fail (not hang) and name the path; check-config must not hang, and must
    fail too when `checked` (the sinks' files are read when the broker opens its sinks)."""
    for mode in ("--check-config", "--config"):
        try:
            p = subprocess.run([opts.certrelayd, mode, config], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30, env=t.child_env(tmp))
        except subprocess.TimeoutExpired:
            t.fail("%s with %s hangs" % (mode, what))
        out = p.stdout.decode("utf-8", "replace")
        if mode == "--config" and p.returncode == 0:
            t.fail("the broker ran with %s:\n%s" % (what, out))
        if mode == "--check-config" and checked and p.returncode == 0:
            t.fail("check-config accepted %s:\n%s" % (what, out))
        if p.returncode != 0 and needle not in out:
            t.fail("%s %s: the message does not name %s:\n%s" % (mode, what, needle, out))
    t.log("refused: %s" % what)


def special_paths(opts, tmp):
    fifo = tmp.join("fifo")
    os.mkfifo(fifo)
    os.mkdir(tmp.join("adir"))
    refuses(opts, tmp, fifo, "a FIFO as the configuration file", fifo, checked=True)
    refuses(opts, tmp, tmp.join("adir"), "a directory as the configuration file",
            tmp.join("adir"), checked=True)
    refuses(opts, tmp, "/dev/zero", "a device as the configuration file", "/dev/zero", checked=True)
    hook = {"type": "webhook", "url": "http://127.0.0.1:9/x"}
    for key, sink in (("secret_file", hook), ("bearer_token_file", hook)):
        for path in (fifo, "/dev/zero", tmp.join("adir")):
            sub = t.TempDir("robust_files_sub")
            with sub as s2:
                config, _ = t.write_config(s2, sinks={"s": dict(sink, **{key: path})})
                refuses(opts, s2, config, "%s as %s" % (path, key), path)
    mail = {"type": "email", "url": "smtp://127.0.0.1:9", "from": "a@example.com",
            "to": "b@example.com"}
    for key in ("body_file", "html_body_file", "password_file"):
        extra = {key: fifo}
        if key == "password_file":
            extra["username"] = "u"
        with t.TempDir("robust_files_sub") as s2:
            config, _ = t.write_config(s2, sinks={"m": dict(mail, **extra)})
            refuses(opts, s2, config, "a FIFO as %s" % key, key)
    with t.TempDir("robust_files_sub") as s2:
        config, _ = t.write_config(s2, log_file=fifo)
        refuses(opts, s2, config, "a FIFO as log_file", fifo)


def test():
    opts = t.args("certrelayd")
    with t.TempDir("robust_files") as tmp:
        hostile_spool(opts, tmp)
    with t.TempDir("robust_files") as tmp:
        special_paths(opts, tmp)


if __name__ == "__main__":
    t.main(test)
