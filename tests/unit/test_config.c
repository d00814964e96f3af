/*
 * The configuration file: every key, the defaults, each class of error with its exact
 * "FILE:LINE: " prefix, the INI details administrators run into (CRLF, BOM, inline comments,
 * continuation lines, long lines), the value parsers, the platform defaults, and allocation
 * failure at every step of a full load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#else
#include <process.h>
#define getpid _getpid
#endif
#include "check.h"
#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/log.h"
#include "sinks/file/settings.h"
#include "sinks/webhook/settings.h"
#include "sinks/email/settings.h"
#include "sinks/sink.h"

/* A configuration that sets every key the core knows, spread over two sinks. */
static const char full_config[] = "; CertRelay test configuration\n"
                                  "[broker]\n"
                                  "listen = /run/certrelay/broker.sock\n"
                                  "state_dir = /var/lib/certrelay\n"
                                  "spool_dir = /var/spool/certrelay\n"
                                  "log_file = /var/log/certrelay.log\n"
                                  "log_level = debug\n"
                                  "max_frame = 1048576\n"
                                  "commit_batch_max = 64\n"
                                  "\n"
                                  "[sink.archive]\n"
                                  "events = issued, revoked\n"
                                  "templates = WebServer, 1.3.6.1.4.1.311.21.8.1.2\n"
                                  "max_attempts = 5\n"
                                  "max_age = 2d\n"
                                  "backoff_initial = 500ms\n"
                                  "backoff_max = 1h\n"
                                  "concurrency = 2\n"
                                  "timeout = 10s\n"
                                  "directory = /srv/certs\n"
                                  "name = {{serial}}-{{ event }}\n"
                                  "json = false\n"
                                  "der = yes\n"
                                  "type = file\n"
                                  "\n"
                                  "[sink.second]\n"
                                  "type = file\n"
                                  "directory = /srv/other\n";

/* Loads text and expects an error whose message starts with prefix and contains needle. */
static void expect_error_(int line, const char *text, const char *prefix, const char *needle)
{
    struct crs_config *cfg = (struct crs_config *)1;
    char err[CRS_CONFIG_ERRLEN];
    int rc;

    rc = crs_config_load_string("t.ini", text, &cfg, err, sizeof(err));
    if (rc == CRS_ECONFIG && cfg == NULL && strncmp(err, prefix, strlen(prefix)) == 0 &&
        strstr(err, needle) != NULL && strchr(err, '\n') == NULL) {
        check_passed_++;
        return;
    }
    check_failed_++;
    fprintf(stderr, "%s:%d: expected \"%s...%s\", got rc=%d \"%s\"\n", __FILE__, line, prefix,
            needle, rc, rc != 0 ? err : "(success)");
    if (rc == 0)
        crs_config_free(cfg);
}
#define expect_error(text, prefix, needle) expect_error_(__LINE__, text, prefix, needle)

static struct crs_config *load_ok_(int line, const char *text)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN] = "";
    int rc;

    rc = crs_config_load_string("t.ini", text, &cfg, err, sizeof(err));
    if (rc == 0 && cfg != NULL) {
        check_passed_++;
        return cfg;
    }
    check_failed_++;
    fprintf(stderr, "%s:%d: expected success, got rc=%d \"%s\"\n", __FILE__, line, rc, err);
    return NULL;
}
#define load_ok(text) load_ok_(__LINE__, text)

static void test_full(void)
{
    struct crs_config *cfg = load_ok(full_config);
    const struct crs_sink_config *sc;
    const struct crs_file_sink_config *fc;

    if (cfg == NULL)
        return;
    CHECK_EQ_STR(cfg->path, "t.ini");
    CHECK_EQ_STR(cfg->listen, "/run/certrelay/broker.sock");
    CHECK_EQ_STR(cfg->state_dir, "/var/lib/certrelay");
    CHECK_EQ_STR(cfg->spool_dir, "/var/spool/certrelay");
    CHECK_EQ_STR(cfg->log_file, "/var/log/certrelay.log");
    CHECK_EQ_INT(cfg->log_level, CRS_LOG_DEBUG);
    CHECK_EQ_INT(cfg->max_frame, 1048576);
    CHECK_EQ_INT(cfg->commit_batch_max, 64);
    CHECK_EQ_INT(cfg->nsinks, 2);
    if (cfg->nsinks != 2) {
        crs_config_free(cfg);
        return;
    }

    sc = &cfg->sinks[0];
    CHECK_EQ_STR(sc->name, "archive");
    CHECK(sc->type == &crs_sink_type_file);
    CHECK_EQ_INT(sc->line, 11);
    CHECK_EQ_INT(sc->events, CRS_EVENT_ISSUED | CRS_EVENT_REVOKED);
    CHECK_EQ_INT(sc->ntemplates, 2);
    CHECK(sc->templates != NULL && sc->templates[2] == NULL);
    if (sc->templates != NULL && sc->ntemplates == 2) {
        CHECK_EQ_STR(sc->templates[0], "WebServer");
        CHECK_EQ_STR(sc->templates[1], "1.3.6.1.4.1.311.21.8.1.2");
    }
    CHECK_EQ_INT(sc->max_attempts, 5);
    CHECK_EQ_INT(sc->max_age_ms, 2 * 86400000LL);
    CHECK_EQ_INT(sc->backoff_initial_ms, 500);
    CHECK_EQ_INT(sc->backoff_max_ms, 3600000);
    CHECK_EQ_INT(sc->concurrency, 2);
    CHECK_EQ_INT(sc->timeout_ms, 10000);
    fc = sc->typed;
    CHECK(fc != NULL);
    if (fc != NULL) {
        CHECK_EQ_STR(fc->directory, "/srv/certs");
        CHECK_EQ_STR(fc->name_source, "{{serial}}-{{ event }}");
        CHECK(fc->name != NULL);
        CHECK_EQ_INT(fc->write_json, 0);
        CHECK_EQ_INT(fc->write_der, 1);
    }

    sc = &cfg->sinks[1];
    CHECK_EQ_STR(sc->name, "second");
    CHECK_EQ_INT(sc->line, 26);
    crs_config_free(cfg);
}

static void test_defaults(void)
{
    struct crs_config *cfg = load_ok("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\n"
                                     "directory = /d\n");
    const struct crs_sink_config *sc;
    const struct crs_file_sink_config *fc;
    char *pipe = crs_default_pipe(), *spool = crs_default_spool_dir();

    if (cfg != NULL) {
        CHECK_EQ_STR(cfg->listen, pipe);
        CHECK_EQ_STR(cfg->spool_dir, spool);
        CHECK(cfg->log_file == NULL);
        CHECK_EQ_INT(cfg->log_level, CRS_LOG_INFO);
        CHECK_EQ_INT(cfg->max_frame, CRS_FRAME_MAX);
        CHECK_EQ_INT(cfg->commit_batch_max, 1024);
        CHECK_EQ_INT(cfg->nsinks, 1);
        sc = &cfg->sinks[0];
        CHECK_EQ_INT(sc->events, CRS_EVENT_ALL);
        CHECK(sc->templates == NULL);
        CHECK_EQ_INT(sc->ntemplates, 0);
        CHECK_EQ_INT(sc->max_attempts, 12);
        CHECK_EQ_INT(sc->max_age_ms, 7 * 86400000LL);
        CHECK_EQ_INT(sc->backoff_initial_ms, 1000);
        CHECK_EQ_INT(sc->backoff_max_ms, 600000);
        CHECK_EQ_INT(sc->concurrency, 4);
        CHECK_EQ_INT(sc->timeout_ms, 30000);
        fc = sc->typed;
        CHECK_EQ_STR(fc->name_source, "{{request_id}}-{{event}}");
        CHECK(fc->name != NULL);
        CHECK_EQ_INT(fc->write_json, 1);
        CHECK_EQ_INT(fc->write_der, 1);
        crs_config_free(cfg);
    }
    crs_free(pipe);
    crs_free(spool);

    /* A broker without sinks still queues: allowed. */
    cfg = load_ok("[broker]\nstate_dir = /s\n");
    if (cfg != NULL)
        CHECK_EQ_INT(cfg->nsinks, 0);
    crs_config_free(cfg);
    crs_config_free(NULL);
}

static void test_errors(void)
{
    /* Syntax. */
    expect_error("[broker]\nstate_dir = /s\nfoo\n", "t.ini:3: ", "syntax error");
    expect_error("[broken\nstate_dir = /s\n", "t.ini:1: ", "missing ']'");
    expect_error("[broker] x\n", "t.ini:1: ", "unexpected text after ']'");
    expect_error("[broker]\n= value\n", "t.ini:2: ", "missing key name");
    expect_error("[broker]\nstate_dir ; = /s\n", "t.ini:2: ", "syntax error");
    expect_error("state_dir = /s\n[broker]\n", "t.ini:1: ", "outside of any section");

    /* Sections. */
    expect_error("[broker]\nstate_dir = /s\n\n[sinks.a]\n",
                 "t.ini:4: ", "unknown section [sinks.a]");
    expect_error("[broker]\nstate_dir = /s\n[broker]\n",
                 "t.ini:3: ", "duplicate section [broker] (first on line 1)");
    expect_error("[broker]\nstate_dir = /s\n[sink.bad name]\ntype = file\n",
                 "t.ini:3: ", "invalid sink name");
    expect_error("[broker]\nstate_dir = /s\n[sink.]\n", "t.ini:3: ", "invalid sink name");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "[sink.a]\ntype = file\ndirectory = /e\n",
                 "t.ini:6: ", "duplicate sink name 'a' (first defined on line 3)");

    /* Unknown keys. */
    expect_error("[broker]\nstate_dir = /s\nbogus = 1\n",
                 "t.ini:3: ", "unknown key 'bogus' in [broker]");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\nurl = x\n",
                 "t.ini:6: ", "unknown key 'url' for sink type 'file'");
    /* Keys before `type` are checked against the type all the same. */
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\nurl = x\ndirectory = /d\ntype = file\n",
                 "t.ini:4: ", "unknown key 'url' for sink type 'file'");

    /* Bad values. */
    expect_error("[broker]\nstate_dir = /s\nlog_level = loud\n",
                 "t.ini:3: ", "bad value for 'log_level'");
    expect_error("[broker]\nstate_dir = /s\nmax_frame = 100\n",
                 "t.ini:3: ", "bad value for 'max_frame'");
    expect_error("[broker]\nstate_dir = /s\nmax_frame = 67108865\n",
                 "t.ini:3: ", "from 1024 to 67108864");
    expect_error("[broker]\nstate_dir = /s\ncommit_batch_max = 0\n",
                 "t.ini:3: ", "bad value for 'commit_batch_max'");
    expect_error("[broker]\nstate_dir =\n", "t.ini:2: ", "must not be empty");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "timeout = 5 minutes\n",
                 "t.ini:6: ", "bad value for 'timeout': expected a duration");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "max_age = 0\n",
                 "t.ini:6: ", "from 1s to 3650d");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "max_attempts = 0\n",
                 "t.ini:6: ",
                 "bad value for 'max_attempts': expected a number of attempts from 1 "
                 "to 1000");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "concurrency = four\n",
                 "t.ini:6: ", "bad value for 'concurrency'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "json = maybe\n",
                 "t.ini:6: ", "bad value for 'json': expected true or false");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "events = issued, bogus\n",
                 "t.ini:6: ", "bad value for 'events': unknown event name 'bogus'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "templates = , ,\n",
                 "t.ini:6: ", "bad value for 'templates'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = ftp\ndirectory = /d\n",
                 "t.ini:4: ", "bad value for 'type': unknown sink type 'ftp'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "name = {{nope}}\n",
                 "t.ini:6: ", "bad value for 'name': unknown field 'nope'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "name = x-{{request_id\n",
                 "t.ini:6: ", "bad value for 'name': unterminated");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "name = ../{{request_id}}\n",
                 "t.ini:6: ", "bad value for 'name': must be a file name");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "backoff_initial = 1h\n",
                 "t.ini:6: ", "backoff_max must not be less than backoff_initial");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\nbackoff_max = 1s\ntype = file\n"
                 "backoff_initial = 2s\ndirectory = /d\n",
                 "t.ini:6: ", "backoff_max must not be less than backoff_initial");

    /* Duplicates. */
    expect_error("[broker]\nstate_dir = /s\nlog_level = info\nstate_dir = /t\n",
                 "t.ini:4: ", "duplicate key 'state_dir' (first set on line 2)");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ntype = file\n",
                 "t.ini:5: ", "duplicate key 'type'");
    expect_error(
        "[broker]\nstate_dir = /s\n[sink.a]\ndirectory = /d\ntype = file\ndirectory = /e\n",
        "t.ini:6: ", "duplicate key 'directory' (first set on line 4)");
    expect_error("[broker]\nstate_dir = /s\n[sink.h]\nurl = https://a.example/x\ntype = webhook\n"
                 "url = https://b.example/x\n",
                 "t.ini:6: ", "duplicate key 'url' (first set on line 4)");

    /* Missing required keys, at the section header. */
    expect_error("[broker]\nstate_dir = /s\n\n[sink.archive]\ntype = file\njson = true\n",
                 "t.ini:4: ", "[sink.archive]: missing required key 'directory'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ndirectory = /d\n[sink.b]\n",
                 "t.ini:3: ", "[sink.a]: missing required key 'type'");
    expect_error("; comment\n[broker]\nlog_level = info\n[sink.a]\ntype = file\n",
                 "t.ini:2: ", "[broker]: missing required key 'state_dir'");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\njson = no\n"
                 "der = off\n",
                 "t.ini:3: ", "[sink.a]: json and der are both false");
    expect_error("", "t.ini:1: ", "missing required section [broker]");

    /* A one-line key followed by an indented key: read as a continuation, and said so. */
    expect_error("[broker]\nstate_dir = /s\n  spool_dir = /q\n",
                 "t.ini:2: ", "bad value for 'state_dir': it takes one line");
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n  json = no\n",
                 "t.ini:5: ", "bad value for 'directory': it takes one line");

    /* Encoding. */
    expect_error("\xff\xfe[\0b\0", "t.ini:1: ", "UTF-16");
    expect_error("[broker]\nstate_dir = /caf\xe9\n", "t.ini:2: ", "invalid UTF-8");
    expect_error("[broker]\nstate_dir = /\xc0\xaf\n", "t.ini:2: ", "invalid UTF-8");
}

/* inih reads lines into a buffer of 200 bytes; longer key lines are refused, not cut. */
static void test_long_lines(void)
{
    char text[4096], name[80];
    struct crs_config *cfg;
    int n;

    /* A long comment and a long header are fine: inih never sees them. */
    memset(name, 'n', 64);
    name[64] = '\0';
    n = snprintf(text, sizeof(text),
                 "; %0300d\n[broker]\nstate_dir = /s\n[sink.%s]\ntype = file\n"
                 "directory = /d\n",
                 0, name);
    CHECK(n > 0 && (size_t)n < sizeof(text));
    cfg = load_ok(text);
    if (cfg != NULL && cfg->nsinks == 1)
        CHECK_EQ_STR(cfg->sinks[0].name, name);
    crs_config_free(cfg);

    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(text, sizeof(text), "[broker]\nstate_dir = /s\n[sink.%s]\ntype = file\n", name);
    expect_error(text, "t.ini:3: ", "invalid sink name");

    /* The longest key line inih takes whole, and one byte more. */
    snprintf(text, sizeof(text), "[broker]\nstate_dir = /%0185d\nlog_level = warn\n", 0);
    cfg = load_ok(text);
    if (cfg != NULL) {
        CHECK_EQ_INT(strlen(cfg->state_dir), 186);
        CHECK_EQ_INT(cfg->log_level, CRS_LOG_WARN);
    }
    crs_config_free(cfg);
    snprintf(text, sizeof(text), "[broker]\nstate_dir = /%0186d\nlog_level = warn\n", 0);
    expect_error(text, "t.ini:2: ", "line too long (at most 198 characters)");
    /* With CRLF the CR does not count. */
    snprintf(text, sizeof(text), "[broker]\r\nstate_dir = /%0185d\r\nlog_level = warn\r\n", 0);
    cfg = load_ok(text);
    crs_config_free(cfg);
}

static void test_ini_details(void)
{
    struct crs_config *cfg;
    const char *crlf = "\xEF\xBB\xBF; saved by Notepad\r\n"
                       "[broker]\r\n"
                       "state_dir = C:\\ProgramData\\CertRelay\\state ; where the queue lives\r\n"
                       "listen = \\\\.\\pipe\\CertRelay\r\n"
                       "\r\n"
                       "[sink.drop]   ; the file drop\r\n"
                       "type = file\r\n"
                       "directory = D:\\drop;x\r\n"
                       "events = issued,\r\n"
                       "    revoked ; continuation lines are joined\r\n"
                       "\r\n"
                       "  ; an indented comment does not continue anything\r\n"
                       "    crl_issued\r\n"
                       "max_attempts = 3\r\n";

    /* CRLF line endings, a UTF-8 BOM, inline comments, Windows paths, a continued list. */
    cfg = load_ok(crlf);
    if (cfg != NULL) {
        CHECK_EQ_STR(cfg->state_dir, "C:\\ProgramData\\CertRelay\\state");
        CHECK_EQ_STR(cfg->listen, "\\\\.\\pipe\\CertRelay");
        CHECK_EQ_INT(cfg->nsinks, 1);
        if (cfg->nsinks == 1) {
            const struct crs_file_sink_config *fc = cfg->sinks[0].typed;
            /* An inline comment needs a blank before the ';'. */
            CHECK_EQ_STR(fc->directory, "D:\\drop;x");
            CHECK_EQ_INT(cfg->sinks[0].events,
                         CRS_EVENT_ISSUED | CRS_EVENT_REVOKED | CRS_EVENT_CRL_ISSUED);
            CHECK_EQ_INT(cfg->sinks[0].max_attempts, 3);
        }
        crs_config_free(cfg);
    }

    /* The key line after a multi-line value has its own line number. */
    expect_error("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                 "templates = WebServer,\n  User\n  , Machine\nmax_attempts = none\n",
                 "t.ini:9: ", "bad value for 'max_attempts'");
    cfg = load_ok("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\ndirectory = /d\n"
                  "templates = Web Server,\n  User\n  , Machine\nmax_attempts = 7\n");
    if (cfg != NULL && cfg->nsinks == 1) {
        const struct crs_sink_config *sc = &cfg->sinks[0];
        CHECK_EQ_INT(sc->ntemplates, 3);
        if (sc->ntemplates == 3) {
            CHECK_EQ_STR(sc->templates[0], "Web Server");
            CHECK_EQ_STR(sc->templates[1], "User");
            CHECK_EQ_STR(sc->templates[2], "Machine");
        }
        CHECK_EQ_INT(sc->max_attempts, 7);
    }
    crs_config_free(cfg);

    /* An indented key right after a header is a key, not a continuation. */
    cfg = load_ok("[broker]\n  state_dir = /s\n");
    if (cfg != NULL)
        CHECK_EQ_STR(cfg->state_dir, "/s");
    crs_config_free(cfg);

    /* `key: value` is inih's concession to configparser; blanks around the name are trimmed. */
    cfg = load_ok("[ broker ]\nstate_dir: /s\nlog_level=error\n");
    if (cfg != NULL) {
        CHECK_EQ_STR(cfg->state_dir, "/s");
        CHECK_EQ_INT(cfg->log_level, CRS_LOG_ERROR);
    }
    crs_config_free(cfg);

    /* No trailing newline, and a '#' comment. */
    cfg = load_ok("# comment\n[broker]\nstate_dir = /s");
    if (cfg != NULL)
        CHECK_EQ_STR(cfg->state_dir, "/s");
    crs_config_free(cfg);

    /* Error lines count the lines skipped before them, CRLF or not. */
    expect_error("\r\n\r\n[broker]\r\nstate_dir = /s\r\n\r\nbogus = 1\r\n",
                 "t.ini:6: ", "unknown key 'bogus'");
    expect_error("\xEF\xBB\xBF[broker]\nbogus = 1\n", "t.ini:2: ", "unknown key 'bogus'");
}

static void test_parsers(void)
{
    int64_t ms;
    uint32_t u;
    int b;
    char **v;
    size_t n;

    CHECK_EQ_INT(crs_parse_duration_ms("250ms", &ms), 0);
    CHECK_EQ_INT(ms, 250);
    CHECK_EQ_INT(crs_parse_duration_ms("1s", &ms), 0);
    CHECK_EQ_INT(ms, 1000);
    CHECK_EQ_INT(crs_parse_duration_ms("10m", &ms), 0);
    CHECK_EQ_INT(ms, 600000);
    CHECK_EQ_INT(crs_parse_duration_ms("2h", &ms), 0);
    CHECK_EQ_INT(ms, 7200000);
    CHECK_EQ_INT(crs_parse_duration_ms("7d", &ms), 0);
    CHECK_EQ_INT(ms, 604800000);
    CHECK_EQ_INT(crs_parse_duration_ms("45", &ms), 0);
    CHECK_EQ_INT(ms, 45000);
    CHECK_EQ_INT(crs_parse_duration_ms("0", &ms), 0);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(crs_parse_duration_ms("9223372036854775807ms", &ms), 0);
    CHECK_EQ_INT(ms, INT64_MAX);
    CHECK_EQ_INT(crs_parse_duration_ms("9223372036854775808ms", &ms), CRS_EINVAL);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(crs_parse_duration_ms("9223372036854775807s", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("106751991167d", &ms), 0);
    CHECK_EQ_INT(crs_parse_duration_ms("106751991168d", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("-1s", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("+1s", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("1w", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("1sx", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("1 s", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("1.5s", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("s", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("", &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms(NULL, &ms), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_duration_ms("1s", NULL), CRS_EINVAL);

    CHECK_EQ_INT(crs_parse_bool("true", &b), 0);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(crs_parse_bool("YES", &b), 0);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(crs_parse_bool("On", &b), 0);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(crs_parse_bool("1", &b), 0);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(crs_parse_bool("False", &b), 0);
    CHECK_EQ_INT(b, 0);
    CHECK_EQ_INT(crs_parse_bool("no", &b), 0);
    CHECK_EQ_INT(crs_parse_bool("off", &b), 0);
    CHECK_EQ_INT(crs_parse_bool("0", &b), 0);
    CHECK_EQ_INT(b, 0);
    CHECK_EQ_INT(crs_parse_bool("2", &b), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_bool("truee", &b), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_bool("tru", &b), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_bool("", &b), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_bool(NULL, &b), CRS_EINVAL);

    CHECK_EQ_INT(crs_parse_u32("0", 0, 10, &u), 0);
    CHECK_EQ_INT(u, 0);
    CHECK_EQ_INT(crs_parse_u32("007", 0, 10, &u), 0);
    CHECK_EQ_INT(u, 7);
    CHECK_EQ_INT(crs_parse_u32("4294967295", 0, UINT32_MAX, &u), 0);
    CHECK_EQ_INT(u, UINT32_MAX);
    CHECK_EQ_INT(crs_parse_u32("4294967296", 0, UINT32_MAX, &u), CRS_ERANGE);
    CHECK_EQ_INT(u, 0);
    CHECK_EQ_INT(crs_parse_u32("99999999999999999999999", 0, UINT32_MAX, &u), CRS_ERANGE);
    CHECK_EQ_INT(crs_parse_u32("11", 1, 10, &u), CRS_ERANGE);
    CHECK_EQ_INT(crs_parse_u32("0", 1, 10, &u), CRS_ERANGE);
    CHECK_EQ_INT(crs_parse_u32("-1", 0, 10, &u), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_u32("+1", 0, 10, &u), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_u32("1k", 0, 10000, &u), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_u32("0x10", 0, 100, &u), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_u32(" 1", 0, 10, &u), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_u32("", 0, 10, &u), CRS_EINVAL);
    CHECK_EQ_INT(crs_parse_u32(NULL, 0, 10, &u), CRS_EINVAL);

    CHECK_EQ_INT(crs_split_list(" a , b c,,d ,", &v, &n), 0);
    CHECK_EQ_INT(n, 3);
    if (v != NULL && n == 3) {
        CHECK_EQ_STR(v[0], "a");
        CHECK_EQ_STR(v[1], "b c");
        CHECK_EQ_STR(v[2], "d");
        CHECK(v[3] == NULL);
    }
    crs_strv_free(v);
    CHECK_EQ_INT(crs_split_list("", &v, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK(v != NULL && v[0] == NULL);
    crs_strv_free(v);
    CHECK_EQ_INT(crs_split_list("single", &v, NULL), 0);
    CHECK(v != NULL && v[0] != NULL && strcmp(v[0], "single") == 0 && v[1] == NULL);
    crs_strv_free(v);
    CHECK_EQ_INT(crs_split_list(NULL, &v, &n), CRS_EINVAL);
    CHECK(v == NULL);
    crs_strv_free(NULL);
}

/* A key the sink type declares repeatable reaches set() once per occurrence, in file order. */
static void test_repeatable_keys(void)
{
    struct crs_config *cfg;
    const struct crs_webhook_sink_config *wc;

    cfg = load_ok("[broker]\nstate_dir = /s\n[sink.hook]\nheader = X-A: 1\ntype = webhook\n"
                  "url = https://hooks.example/adcs\nheader = X-B: 2\n");
    if (cfg == NULL || cfg->nsinks != 1)
        goto done;
    CHECK(cfg->sinks[0].type == crs_sink_type_find("webhook"));
    wc = cfg->sinks[0].typed;
    CHECK_EQ_INT(wc->nheaders, 2);
    if (wc->nheaders == 2) {
        CHECK(strstr(wc->headers[0], "X-A") != NULL);
        CHECK(strstr(wc->headers[1], "X-B") != NULL);
    }
done:
    crs_config_free(cfg);
}

static void test_registry(void)
{
    CHECK(crs_sink_type_find("file") == &crs_sink_type_file);
    CHECK(crs_sink_type_find("webhook") == &crs_sink_type_webhook);
    CHECK(crs_sink_type_find("email") == &crs_sink_type_email);
    CHECK(crs_sink_type_find("ftp") == NULL);
    CHECK(crs_sink_type_find("File") == NULL);
    CHECK(crs_sink_type_find(NULL) == NULL);
}

/* crs_config_load on real files: the FILE of every message is the path exactly as given. */
static void test_files(void)
{
    struct crs_config *cfg = (struct crs_config *)1;
    char path[64], dotted[80], err[CRS_CONFIG_ERRLEN];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "test_config_%ld.ini", (long)getpid());
    snprintf(dotted, sizeof(dotted), "./%s", path);

    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("[broker]\nstate_dir = /s\n[sink.a]\ntype = file\n", f);
    fclose(f);
    rc = crs_config_load(dotted, &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(cfg == NULL);
    {
        char want[160];
        snprintf(want, sizeof(want), "%s:3: [sink.a]: missing required key 'directory'", dotted);
        CHECK_EQ_STR(err, want);
    }

    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(full_config, f);
    fclose(f);
    rc = crs_config_load(path, &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_STR(cfg->path, path);
        CHECK_EQ_INT(cfg->nsinks, 2);
        crs_config_free(cfg);
    }

    /* Above the 1 MiB cap: refused before parsing. */
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    for (rc = 0; rc < 1024 * 16 + 1; rc++)
        fputs("; 64 bytes of comment ..................................... end\n", f);
    fclose(f);
    rc = crs_config_load(path, &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(cfg == NULL);
    CHECK(strncmp(err, path, strlen(path)) == 0 && strstr(err, ":0: file too large") != NULL);
    remove(path);

    cfg = (struct crs_config *)1;
    rc = crs_config_load("no/such/dir/certrelay.ini", &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ENOENT);
    CHECK(cfg == NULL);
    CHECK_EQ_STR(err, "no/such/dir/certrelay.ini:0: cannot open: no such file or directory");

    rc = crs_config_load(".", &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strncmp(err, ".:0: cannot open", 16) == 0);

    CHECK_EQ_INT(crs_config_load(NULL, &cfg, err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_config_load_string("x", "", NULL, err, sizeof(err)), CRS_EINVAL);
    /* A tiny error buffer truncates the message but never overflows. */
    rc = crs_config_load_string("t.ini", "[x]\n", &cfg, err, 8);
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK_EQ_STR(err, "t.ini:1");
    CHECK_EQ_INT(crs_config_load_string("t.ini", "[x]\n", &cfg, NULL, 0), CRS_ECONFIG);
}

#ifndef _WIN32
static void check_defaults(const char *base, const char *pipe, const char *spool)
{
    char *b = crs_default_base_dir(), *p = crs_default_pipe(), *s = crs_default_spool_dir();

    CHECK_EQ_STR(b, base);
    CHECK_EQ_STR(p, pipe);
    CHECK_EQ_STR(s, spool);
    crs_free(b);
    crs_free(p);
    crs_free(s);
}

static void test_platform_defaults(void)
{
    char *home = getenv("CERTRELAY_HOME"), *xdg = getenv("XDG_RUNTIME_DIR");
    char saved_home[1024] = "", saved_xdg[1024] = "", base[64], sock[128], spool[128];

    if (home != NULL)
        snprintf(saved_home, sizeof(saved_home), "%s", home);
    if (xdg != NULL)
        snprintf(saved_xdg, sizeof(saved_xdg), "%s", xdg);

    setenv("CERTRELAY_HOME", "/srv/crs home", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
    check_defaults("/srv/crs home", "/srv/crs home/certrelay.sock", "/srv/crs home/spool");
    setenv("CERTRELAY_HOME", "", 1);
    check_defaults("/run/user/42/certrelay", "/run/user/42/certrelay/certrelay.sock",
                   "/run/user/42/certrelay/spool");
    unsetenv("CERTRELAY_HOME");
    unsetenv("XDG_RUNTIME_DIR");
    snprintf(base, sizeof(base), "/tmp/certrelay-%lu", (unsigned long)getuid());
    snprintf(sock, sizeof(sock), "%s/certrelay.sock", base);
    snprintf(spool, sizeof(spool), "%s/spool", base);
    check_defaults(base, sock, spool);

    if (home != NULL)
        setenv("CERTRELAY_HOME", saved_home, 1);
    if (xdg != NULL)
        setenv("XDG_RUNTIME_DIR", saved_xdg, 1);
}
#endif

/*
 * Fails the 0th, 1st, 2nd, ... allocation of a full load: each run must report out of memory
 * (and leak nothing, which the sanitizer build checks) until one run needs no more than it got.
 */
static void test_alloc_failure(void)
{
    struct crs_config *cfg;
    char err[CRS_CONFIG_ERRLEN];
    long n;
    int rc = -1, bad = 0;

    for (n = 0; n < 100000; n++) {
        cfg = (struct crs_config *)1;
        crs_alloc_fail_after(n);
        rc = crs_config_load_string("t.ini", full_config, &cfg, err, sizeof(err));
        crs_alloc_fail_after(-1);
        if (rc == 0) {
            crs_config_free(cfg);
            break;
        }
        if (rc != CRS_ENOMEM || cfg != NULL || strstr(err, "out of memory") == NULL) {
            if (bad++ < 5)
                fprintf(stderr, "allocation %ld failed: rc=%d \"%s\"\n", n, rc, err);
        }
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(bad, 0);
    CHECK(n > 20);
}

/* The robustness bounds of [broker] (issue 13): parsed, defaulted to 0 (the server's own
 * defaults), and range-checked. */
static void test_limits(void)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    int rc;

    rc = crs_config_load_string("t.ini",
                                "[broker]\nstate_dir = /s\nmax_connections = 8\n"
                                "memory_budget = 16777216\nhello_timeout = 300ms\n"
                                "frame_timeout = 2s\nidle_timeout = 1m\nsalvage = true\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, 0);
    if (rc != 0)
        return;
    CHECK_EQ_INT(cfg->max_connections, 8);
    CHECK_EQ_INT(cfg->memory_budget, 16777216);
    CHECK_EQ_INT(cfg->hello_timeout_ms, 300);
    CHECK_EQ_INT(cfg->frame_timeout_ms, 2000);
    CHECK_EQ_INT(cfg->idle_timeout_ms, 60000);
    CHECK_EQ_INT(cfg->salvage, 1);
    crs_config_free(cfg);
    rc = crs_config_load_string("t.ini", "[broker]\nstate_dir = /s\n", &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(cfg->max_connections, 0);
        CHECK_EQ_INT(cfg->salvage, 0);
        crs_config_free(cfg);
    }
    expect_error("[broker]\nstate_dir = /s\nmax_connections = 0\n",
                 "t.ini:3: ", "bad value for 'max_connections'");
    expect_error("[broker]\nstate_dir = /s\nmemory_budget = 1000\n",
                 "t.ini:3: ", "bad value for 'memory_budget'");
    expect_error("[broker]\nstate_dir = /s\nhello_timeout = 10ms\n",
                 "t.ini:3: ", "bad value for 'hello_timeout'");
    expect_error("[broker]\nstate_dir = /s\nsalvage = maybe\n",
                 "t.ini:3: ", "bad value for 'salvage'");
}

/* [broker] ca_account: one more account the Windows broker admits (kept as written). */
static void test_ca_account(void)
{
    struct crs_config *cfg = load_ok("[broker]\nstate_dir = /s\nca_account = CONTOSO\\svc-ca\n");

    if (cfg != NULL)
        CHECK_EQ_STR(cfg->ca_account, "CONTOSO\\svc-ca");
    crs_config_free(cfg);
    cfg = load_ok("[broker]\nstate_dir = /s\n");
    if (cfg != NULL)
        CHECK(cfg->ca_account == NULL);
    crs_config_free(cfg);
}

/* The operations keys (issue 10): retention, log rotation, metrics. */
static void test_operations_keys(void)
{
    struct crs_config *cfg = load_ok("[broker]\nstate_dir = /s\n");

    CHECK_EQ_INT(cfg->retention_ms, 30LL * 86400 * 1000);
    CHECK_EQ_INT(cfg->dead_retention_ms, 90LL * 86400 * 1000);
    CHECK_EQ_INT(cfg->log_max_size, 10LL << 20);
    CHECK_EQ_INT(cfg->log_keep, 5);
    CHECK(cfg->metrics_listen == NULL);
    crs_config_free(cfg);
    cfg = load_ok("[broker]\nstate_dir = /s\nretention = 2h\ndead_retention = 1s\n"
                  "log_max_size = 512k\nlog_keep = 0\nmetrics_listen = 127.0.0.1:9464\n");
    CHECK_EQ_INT(cfg->retention_ms, 2LL * 3600 * 1000);
    CHECK_EQ_INT(cfg->dead_retention_ms, 1000);
    CHECK_EQ_INT(cfg->log_max_size, 512 * 1024);
    CHECK_EQ_INT(cfg->log_keep, 0);
    CHECK_EQ_STR(cfg->metrics_listen, "127.0.0.1:9464");
    crs_config_free(cfg);
    cfg = load_ok("[broker]\nstate_dir = /s\nlog_max_size = 0\n");
    CHECK_EQ_INT(cfg->log_max_size, 0);
    crs_config_free(cfg);
    expect_error("[broker]\nstate_dir = /s\nretention = 0s\n", "t.ini:3: ", "bad value");
    expect_error("[broker]\nstate_dir = /s\nlog_max_size = 10x\n", "t.ini:3: ", "size");
    expect_error("[broker]\nstate_dir = /s\nlog_max_size = -1\n", "t.ini:3: ", "size");
    expect_error("[broker]\nstate_dir = /s\nlog_keep = 1001\n", "t.ini:3: ", "log_keep");
}

int main(void)
{
    test_full();
    test_limits();
    test_ca_account();
    test_operations_keys();
    test_defaults();
    test_errors();
    test_long_lines();
    test_ini_details();
    test_parsers();
    test_registry();
    test_repeatable_keys();
    test_files();
#ifndef _WIN32
    test_platform_defaults();
#endif
    test_alloc_failure();
    return CHECK_DONE();
}
