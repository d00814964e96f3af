"""The log file rotates by size: with log_max_size = 2k and log_keep = 3, a broker logging every
event (log_level = debug) leaves certrelayd.log plus exactly certrelayd.log.1 to .3, none larger
than the limit plus one line, the newest lines in the current file, and the lines in order from
the oldest file to the current one."""

import os
import uuid

import crstest as t

EVENTS = 150
MAX = 2048
KEEP = 3


def test():
    opts = t.args("certrelayd")
    with t.TempDir("logrotate") as tmp:
        log_file = tmp.join("certrelayd.log")
        config, settings = t.write_config(tmp, log_file=log_file, log_level="debug",
                                          log_max_size="2k", log_keep=str(KEEP))
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        c = t.Client(settings["listen"])
        c.hello()
        for i in range(EVENTS):
            eid = str(uuid.uuid4())
            c.send_event(t.event_bytes(eid, "issued", i + 1))
            if c.answer() != ("ack", eid, None):
                t.fail("event %d not acked" % (i + 1))
        c.close()
        broker.stop_ok()

        names = sorted(n for n in os.listdir(tmp.path) if n.startswith("certrelayd.log"))
        want = ["certrelayd.log"] + ["certrelayd.log.%d" % i for i in range(1, KEEP + 1)]
        if names != want:
            t.fail("log files %r, want %r" % (names, want))
        texts = []
        for n in reversed(want[1:]):
            with open(tmp.join(n)) as f:
                texts.append(f.read())
            size = os.path.getsize(tmp.join(n))
            if size < MAX or size > MAX + 2048:
                t.fail("%s has %d bytes (limit %d)" % (n, size, MAX))
        with open(log_file) as f:
            texts.append(f.read())
        # The file rotates right after the line that reaches the limit, so when the last line did,
        # the current file is new and empty and that line ends the previous one.
        newest = next((text for text in reversed(texts) if text), "")
        if "broker stopped" not in newest:
            t.fail("the last lines are not in the newest file")
        # Oldest to newest, the timestamps never go back: nothing was reordered or mixed up.
        stamps = [line.split(" ", 1)[0] for text in texts for line in text.splitlines()]
        if stamps != sorted(stamps):
            t.fail("log lines out of order across the rotated files")


if __name__ == "__main__":
    t.main(test)
