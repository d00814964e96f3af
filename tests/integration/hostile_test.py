"""Hostile values in file names: common names such as `../../etc/x`, `CON`, one with CR/LF and a
mail header, one of 4 KB, used through a `{{common_name}}` name template, all land inside the drop
directory under sanitized names, and each JSON document holds the original value untouched."""

import base64
import json
import os
import subprocess

import crstest as t

HOSTILE = [
    "../../etc/x",
    "CON",
    "a\r\nBcc: x@evil",
    "A" * 2048 + "\u00e9" * 1024,  # 4 KB, with multi-byte characters to split
    "..",
    "nul.txt",
    "{{event_id}}\\..\\..\\win",
]
RESERVED = {"CON", "PRN", "AUX", "NUL"} | {"COM%d" % i for i in range(1, 10)} | \
           {"LPT%d" % i for i in range(1, 10)}


def make_der(tmp):
    key, der = tmp.join("key.pem"), tmp.join("cert.der")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-outform", "DER",
                    "-out", der, "-subj", "/CN=hostile", "-days", "2"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(der, "rb") as f:
        return f.read()


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("hostile") as tmp:
        out = tmp.join("drop", "out")
        config, settings = t.write_config(tmp, sinks={"archive": {
            "type": "file", "directory": out, "name": "{{common_name}}"}})
        der = make_der(tmp)
        script = [{
            "event": "issued",
            "request": {"RequestID": i + 1, "Disposition": 20},
            "certificate": {"CommonName": cn, "RequestID": i + 1,
                            "RawCertificate": {"base64": base64.b64encode(der).decode()}},
        } for i, cn in enumerate(HOSTILE)]
        with open(tmp.join("hostile.json"), "w") as f:
            json.dump(script, f)

        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        p = t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--from",
                   tmp.join("hostile.json"), "--spool-dir", settings["spool_dir"],
                   "--timeout-ms", "30000"], tmp)
        if t.parse_counts(p.stdout).get("acked") != len(HOSTILE):
            t.fail("not every hostile event was acked:\n" + p.stdout)
        t.wait_for(lambda: len([n for n in t.drop_files(out) if n.endswith(".json")])
                   == len(HOSTILE), "%d JSON files" % len(HOSTILE))

        # Everything is a plain file directly inside the drop directory...
        for root, dirs, files in os.walk(tmp.join("drop")):
            if root == tmp.join("drop"):
                if dirs != ["out"] or files:
                    t.fail("something was written beside the drop directory: %s %s" % (
                        dirs, files))
            elif root != out or dirs:
                t.fail("a subdirectory appeared in the drop: %s %s" % (root, dirs))
        for path in ("/tmp/etc/x.json", "/etc/x.json", "/etc/x.cer", tmp.join("etc")):
            if os.path.exists(path):
                t.fail("%s exists: a name escaped the drop directory" % path)
        # ...under sanitized names...
        names = t.drop_files(out)
        for name in names:
            stem = name.rsplit(".", 1)[0]
            if any(ord(c) < 0x20 or c in '<>:"|?*\\/' for c in name):
                t.fail("unsafe character in %r" % name)
            if stem.split(".")[0].upper() in RESERVED or name.startswith("."):
                t.fail("reserved or hidden name %r" % name)
            if len(stem.encode()) > 200:
                t.fail("name longer than 200 bytes: %d" % len(stem.encode()))
            name.encode("utf-8")  # valid UTF-8: no multi-byte character was split
        if len(names) != 2 * len(HOSTILE):
            t.fail("want one .cer and one .json per event, got %s" % names)
        # ...and the JSON keeps the original value.
        found = sorted(d["certificate"]["common_name"] for d in t.json_docs(out).values())
        if found != sorted(HOSTILE):
            t.fail("common names in the JSON differ from the originals")
        for name in names:
            if name.endswith(".cer"):
                with open(os.path.join(out, name), "rb") as f:
                    if f.read() != der:
                        t.fail("%r is not the certificate sent" % name)
        t.log("files: %s" % [n[:40] for n in names])
        broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
