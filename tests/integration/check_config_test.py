#!/usr/bin/python3
"""`certrelayd --check-config FILE`, run as an administrator would run it.

Writes good and bad configuration files into a fresh temporary directory and checks the exit
status, and that the first line on stderr starts with the FILE argument exactly as given (absolute,
relative, with "./" or a subdirectory) followed by ":LINE: ".

Usage: check_config_test.py PATH-TO-CERTRELAYD
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

CERTRELAYD = None

GOOD = """; a configuration that sets a key of every kind
[broker]
state_dir = {tmp}/state
spool_dir = {tmp}/spool
log_level = debug
max_frame = 1048576

[sink.archive]
type = file
directory = {tmp}/drop
events = issued,
    revoked   ; a list may span lines
templates = WebServer, User
max_attempts = 3
backoff_initial = 250ms
backoff_max = 1m
name = {{{{serial}}}}-{{{{event}}}}
json = true
der = false
"""

# (file name, content, expected line) for files that must be refused.
SINK = "[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"  # lines 1-5

BAD = [
    ("syntax.ini", "[broker]\nstate_dir = /s\nfoo\n", 3),
    ("section.ini", "[broken\n", 1),
    ("unknown_section.ini", "[broker]\nstate_dir = /s\n[sinks.a]\n", 3),
    ("unknown_key.ini", "[broker]\nstate_dir = /s\nlisten_on = x\n", 3),
    ("sink_key.ini",
     "[broker]\nstate_dir = /s\n[sink.a]\nurl = x\ntype = file\ndirectory = /d\n", 4),
    ("duration.ini", SINK + "timeout = soon\n", 6),
    ("event.ini", SINK + "events = issued, nope\n", 6),
    ("template.ini", SINK + "name = {{nope}}\n", 6),
    ("type.ini", "[broker]\nstate_dir = /s\n[sink.a]\ntype = carrier-pigeon\n", 4),
    ("duplicate.ini", "[broker]\nstate_dir = /s\nstate_dir = /t\n", 3),
    ("dup_sink.ini", SINK + "[sink.a]\n", 6),
    ("missing.ini", "[broker]\nstate_dir = /s\n\n[sink.archive]\ntype = file\n", 4),
    ("no_state.ini", "[broker]\nlog_level = info\n", 1),
    ("crlf.ini", "\ufeff[broker]\r\nstate_dir = /s\r\n\r\nmax_frame = 12\r\n", 4),
]


def run(args, cwd):
    return subprocess.run([CERTRELAYD, "--check-config"] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=ENV)


class CheckConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="crs-check-config-")
        os.makedirs(os.path.join(self.tmp, "sub"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return path

    def assert_refused(self, arg, line, cwd):
        r = run([arg], cwd)
        self.assertNotEqual(r.returncode, 0, f"{arg} accepted; stderr: {r.stderr!r}")
        first = r.stderr.splitlines()[0] if r.stderr else ""
        prefix = f"{arg}:{line}: "
        self.assertTrue(first.startswith(prefix),
                        f"first stderr line {first!r} does not start with {prefix!r}")
        self.assertGreater(len(first), len(prefix), "no message after the prefix")

    def test_good_file(self):
        path = self.write("good.ini", GOOD.format(tmp=self.tmp))
        r = run([path], self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The same file named relative to the working directory.
        r = run(["good.ini"], self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_files_relative(self):
        for name, text, line in BAD:
            with self.subTest(name=name):
                self.write(name, text)
                self.assert_refused(name, line, self.tmp)

    def test_bad_file_paths_as_given(self):
        name, text, line = BAD[0]
        path = self.write(os.path.join("sub", name), text)
        self.assert_refused(path, line, self.tmp)
        self.assert_refused(os.path.join(".", "sub", name), line, self.tmp)
        self.assert_refused(os.path.join("..", "sub", name), line, os.path.join(self.tmp, "sub"))

    def test_unreadable(self):
        self.assert_refused("does-not-exist.ini", 0, self.tmp)
        self.assert_refused(os.path.join("sub", "nope", "x.ini"), 0, self.tmp)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    CERTRELAYD = os.path.abspath(sys.argv.pop(1))
    # Defaults (listen, spool_dir) must not point at the developer's own runtime directory.
    HOME = tempfile.mkdtemp(prefix="crs-check-config-home-")
    ENV = dict(os.environ, CERTRELAY_HOME=HOME)
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
