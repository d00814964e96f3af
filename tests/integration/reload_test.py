"""SIGHUP reloads, as PARAMCHANGE does for the Windows service: the broker reopens its log file
(log rotation) and keeps serving; SIGTERM still stops it cleanly afterwards.

1. With `log_file` set, the broker writes its start to that file.
2. The file is renamed away (as logrotate does) and SIGHUP sent: a new file appears at the
   configured path with the reload line, the broker still acks events and delivers them.
3. SIGTERM: exit status 0, and the stop is logged to the new file, not the rotated one."""

import os
import signal
import uuid

import crstest as t


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def test():
    opts = t.args("certrelayd")
    with t.TempDir("reload") as tmp:
        log_file = tmp.join("certrelayd.log")
        config, settings = t.write_config(tmp, log_file=log_file)
        sock, out = settings["listen"], tmp.join("out")
        broker = t.Broker(opts.certrelayd, config, tmp, sock).start()
        t.wait_for(lambda: "broker ready" in read(log_file), "the start in the log file")

        rotated = log_file + ".1"
        os.rename(log_file, rotated)
        broker.proc.send_signal(signal.SIGHUP)
        t.wait_for(lambda: "SIGHUP: log file reopened" in read(log_file),
                   "the reload line in a new log file")
        if not broker.running():
            t.fail("the broker exited on SIGHUP:\n%s" % broker.log_text()[-4000:])
        t.log("SIGHUP: log file reopened at the configured path")

        c = t.Client(sock)
        c.hello()
        eid = str(uuid.uuid4())
        c.send_event(t.event_bytes(eid, "issued", 4242))
        if c.answer() != ("ack", eid, None):
            t.fail("no ack after the reload")
        c.close()
        t.wait_for(lambda: "4242-issued.json" in t.drop_files(out), "the event delivered")

        broker.stop_ok()
        if "broker stopped" not in read(log_file):
            t.fail("the stop was not logged to the reopened file:\n%s" % read(log_file))
        if "broker stopped" in read(rotated):
            t.fail("the rotated file was still written after the reload")
        t.log("SIGTERM after the reload: exit 0, logged to the new file")


if __name__ == "__main__":
    t.main(test)
