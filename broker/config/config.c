/*
 * The broker's configuration file (config/config.h), read with the INI reader (config/ini.c).
 *
 *   ; certrelay.ini
 *   [broker]
 *   state_dir = C:\ProgramData\CertRelay\state
 *   log_level = info
 *
 *   [sink.archive]
 *   type      = file
 *   directory = D:\issued
 *   events    = issued, revoked   ; inline comments need a blank before the ';'
 *
 * The keys of a section are buffered with their line numbers and applied when the section ends.
 * That way a sink's `type`, which decides which other keys are valid, may appear anywhere in its
 * section, and every message still names the line the key was on. Parsing stops at the first
 * error: later messages would mostly be consequences of it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "config/config.h"
#include "config/ini.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/text.h"
#include "sinks/sink.h"

/* A configuration file is a few kilobytes; the cap only bounds what a wrong path can cost. */
#define CONFIG_FILE_MAX (1024u * 1024u)
/* Longest value, continuation lines included (an email body template is the largest). */
#define CONFIG_VALUE_MAX (64u * 1024u)
#define SINK_NAME_MAX    64
/* How much of a name from the file a message quotes. */
#define QUOTE_MAX 64

#define MS_SECOND (1000LL)
#define MS_MINUTE (60LL * MS_SECOND)
#define MS_HOUR   (60LL * MS_MINUTE)
#define MS_DAY    (24LL * MS_HOUR)

/* One buffered `key = value` of the current section. */
struct entry {
    char *key;
    char *value;
    size_t len;    /* strlen(value) */
    int line;      /* line of the key */
    int multiline; /* continuation lines were appended */
};

enum section_kind { SECTION_NONE = 0, SECTION_BROKER, SECTION_SINK, SECTION_ALERTS };

struct parser {
    const char *name; /* FILE in messages, exactly as given */
    int lineno;       /* line of the item being applied */

    struct crs_config *cfg;
    enum section_kind kind;
    int section_line;
    char *sink_name; /* NAME of the current [sink.NAME] */
    struct entry *entries;
    size_t nentries;
    size_t capentries;
    int broker_line; /* line of [broker], 0 before it */
    int alerts_line; /* line of [alerts], 0 before it */

    int rc; /* first error, 0 while all is well */
    char *err;
    size_t errlen;
};

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

/*
 * Records the first error as "FILE:LINE: message" and returns it. Later calls keep the first
 * message, because the first error is the one the administrator should fix.
 */
static int fail(struct parser *p, int line, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 4, 5)))
#endif
    ;

static int fail(struct parser *p, int line, int code, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->rc != 0)
        return p->rc;
    p->rc = code;
    if (p->err == NULL || p->errlen == 0)
        return code;
    n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int fail_nomem(struct parser *p, int line)
{
    return fail(p, line, CRS_ENOMEM, "out of memory");
}

/* ---------------------------------------------------------------------------------------------
 * Value parsers (exported for the sink types and the tools)
 * ------------------------------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int crs_parse_duration_ms(const char *s, int64_t *ms)
{
    static const struct {
        const char *suffix;
        int64_t factor;
    } units[] = {
        {"", MS_SECOND},  {"ms", 1},      {"s", MS_SECOND},
        {"m", MS_MINUTE}, {"h", MS_HOUR}, {"d", MS_DAY},
    };
    int64_t v = 0;
    size_t i;

    if (ms != NULL)
        *ms = 0;
    if (s == NULL || ms == NULL || !is_digit(*s))
        return CRS_EINVAL;
    for (; is_digit(*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return CRS_EINVAL;
        v = v * 10 + d;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].suffix) != 0)
            continue;
        if (v > INT64_MAX / units[i].factor)
            return CRS_EINVAL;
        *ms = v * units[i].factor;
        return 0;
    }
    return CRS_EINVAL;
}

int crs_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;

    if (out != NULL)
        *out = 0;
    if (s == NULL || out == NULL)
        return CRS_EINVAL;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (crs_ascii_casecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (crs_ascii_casecmp(s, no[i]) == 0)
            return 0;
    }
    return CRS_EINVAL;
}

/* CRS_EINVAL when s is not a decimal number, CRS_ERANGE when it is one outside [min,max]. */
int crs_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    int big = 0;

    if (out != NULL)
        *out = 0;
    if (s == NULL || out == NULL || !is_digit(*s))
        return CRS_EINVAL;
    for (; is_digit(*s); s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX) {
            big = 1;
            v = UINT32_MAX + 1ull; /* stays above any max while the digits go on */
        }
    }
    if (*s != '\0')
        return CRS_EINVAL;
    if (big || v < min || v > max)
        return CRS_ERANGE;
    *out = (uint32_t)v;
    return 0;
}

/*
 * Empty items ("a,,b", a trailing comma) are skipped rather than refused, because a list that
 * spans lines is easiest to edit with a comma at the end of every line.
 */
int crs_split_list(const char *s, char ***out, size_t *count)
{
    char **v = NULL;
    size_t n = 0, i = 0;
    const char *p, *q;
    int pass;

    if (out != NULL)
        *out = NULL;
    if (count != NULL)
        *count = 0;
    if (s == NULL || out == NULL)
        return CRS_EINVAL;
    /* The first pass counts the items, the second copies them. */
    for (pass = 0; pass < 2; pass++) {
        for (p = s;; p = q + 1) {
            size_t len;
            const char *item;

            q = strchr(p, ',');
            if (q == NULL)
                q = p + strlen(p);
            len = (size_t)(q - p);
            item = crs_ascii_trim(p, &len);
            if (len > 0) {
                if (pass == 0) {
                    n++;
                } else {
                    v[i] = crs_strndup(item, len);
                    if (v[i] == NULL) {
                        crs_strv_free(v);
                        return CRS_ENOMEM;
                    }
                    i++;
                }
            }
            if (*q == '\0')
                break;
        }
        if (pass == 0) {
            v = crs_calloc(n + 1, sizeof(*v));
            if (v == NULL)
                return CRS_ENOMEM;
        }
    }
    *out = v;
    if (count != NULL)
        *count = n;
    return 0;
}

void crs_strv_free(char **v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; v[i] != NULL; i++)
        crs_free(v[i]);
    crs_free(v);
}

/* Writes ms with the largest unit that divides it ("7d", "90s", "250ms"). */
static void format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % MS_DAY == 0)
        snprintf(buf, len, "%lldd", (long long)(ms / MS_DAY));
    else if (ms != 0 && ms % MS_HOUR == 0)
        snprintf(buf, len, "%lldh", (long long)(ms / MS_HOUR));
    else if (ms != 0 && ms % MS_MINUTE == 0)
        snprintf(buf, len, "%lldm", (long long)(ms / MS_MINUTE));
    else if (ms != 0 && ms % MS_SECOND == 0)
        snprintf(buf, len, "%llds", (long long)(ms / MS_SECOND));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
}

/* ---------------------------------------------------------------------------------------------
 * Applying keys
 * ------------------------------------------------------------------------------------------- */

/*
 * The Python-style continuation rule makes an indented line after a key part of that key's
 * value. Only lists may span lines; for any other key a continuation is nearly always a key
 * indented by mistake, so the message says so.
 */
static int single_line(struct parser *p, const struct entry *e)
{
    if (!e->multiline)
        return 0;
    return fail(p, e->line, CRS_ECONFIG,
                "bad value for '%s': it takes one line, but the next line is indented and was "
                "read as its continuation",
                e->key);
}

/* Sets a path or name (non-empty, one line) into *dst, replacing a default. */
static int apply_string(struct parser *p, const struct entry *e, char **dst)
{
    char *copy;

    if (single_line(p, e) != 0)
        return p->rc;
    if (e->len == 0)
        return fail(p, e->line, CRS_ECONFIG, "bad value for '%s': must not be empty", e->key);
    copy = crs_strdup(e->value);
    if (copy == NULL)
        return fail_nomem(p, e->line);
    crs_free(*dst);
    *dst = copy;
    return 0;
}

static int apply_u32(struct parser *p, const struct entry *e, uint32_t min, uint32_t max,
                     const char *what, uint32_t *dst)
{
    if (single_line(p, e) != 0)
        return p->rc;
    if (crs_parse_u32(e->value, min, max, dst) != 0)
        return fail(p, e->line, CRS_ECONFIG, "bad value for '%s': expected %s from %lu to %lu",
                    e->key, what, (unsigned long)min, (unsigned long)max);
    return 0;
}

static int apply_duration(struct parser *p, const struct entry *e, int64_t min, int64_t max,
                          int64_t *dst)
{
    char lo[32], hi[32];
    int64_t v;

    if (single_line(p, e) != 0)
        return p->rc;
    if (crs_parse_duration_ms(e->value, &v) == 0 && v >= min && v <= max) {
        *dst = v;
        return 0;
    }
    format_duration(min, lo, sizeof(lo));
    format_duration(max, hi, sizeof(hi));
    return fail(p, e->line, CRS_ECONFIG,
                "bad value for '%s': expected a duration such as 500ms, 30s, 10m, 2h or 7d, from "
                "%s to %s",
                e->key, lo, hi);
}

/* A size in bytes: a number with an optional k, m or g (KiB, MiB, GiB); 0 means no limit. */
static int apply_size(struct parser *p, const struct entry *e, uint64_t *dst)
{
    unsigned long long v;
    char *end = NULL;

    if (single_line(p, e) != 0)
        return p->rc;
    v = strtoull(e->value, &end, 10);
    if (end != e->value && e->value[0] != '-') {
        unsigned shift = 0;
        if (*end == 'k' || *end == 'K')
            shift = 10;
        else if (*end == 'm' || *end == 'M')
            shift = 20;
        else if (*end == 'g' || *end == 'G')
            shift = 30;
        if (shift != 0)
            end++;
        if (*end == '\0' && v <= (1ULL << 40) >> shift) {
            *dst = (uint64_t)v << shift;
            return 0;
        }
    }
    return fail(p, e->line, CRS_ECONFIG,
                "bad value for '%s': expected a size such as 10m, 512k or 1048576 (bytes)", e->key);
}

static int apply_broker_key(struct parser *p, const struct entry *e)
{
    struct crs_config *cfg = p->cfg;
    enum crs_log_level level;

    if (strcmp(e->key, "listen") == 0)
        return apply_string(p, e, &cfg->listen);
    if (strcmp(e->key, "state_dir") == 0)
        return apply_string(p, e, &cfg->state_dir);
    if (strcmp(e->key, "spool_dir") == 0)
        return apply_string(p, e, &cfg->spool_dir);
    if (strcmp(e->key, "log_file") == 0)
        return apply_string(p, e, &cfg->log_file);
    if (strcmp(e->key, "log_level") == 0) {
        if (single_line(p, e) != 0)
            return p->rc;
        if (crs_log_level_parse(e->value, &level) != 0)
            return fail(p, e->line, CRS_ECONFIG,
                        "bad value for 'log_level': expected error, warn, info or debug");
        cfg->log_level = (int)level;
        return 0;
    }
    if (strcmp(e->key, "max_frame") == 0)
        return apply_u32(p, e, 1024, CRS_FRAME_MAX, "a number of bytes", &cfg->max_frame);
    if (strcmp(e->key, "commit_batch_max") == 0)
        return apply_u32(p, e, 1, 65536, "a number of events", &cfg->commit_batch_max);
    if (strcmp(e->key, "max_connections") == 0)
        return apply_u32(p, e, 1, 65536, "a number of connections", &cfg->max_connections);
    if (strcmp(e->key, "memory_budget") == 0)
        return apply_u32(p, e, 1024 * 1024, 0xffffffffu, "a number of bytes", &cfg->memory_budget);
    if (strcmp(e->key, "hello_timeout") == 0)
        return apply_duration(p, e, 100, MS_DAY, &cfg->hello_timeout_ms);
    if (strcmp(e->key, "frame_timeout") == 0)
        return apply_duration(p, e, 100, MS_DAY, &cfg->frame_timeout_ms);
    if (strcmp(e->key, "idle_timeout") == 0)
        return apply_duration(p, e, 100, 7 * MS_DAY, &cfg->idle_timeout_ms);
    if (strcmp(e->key, "salvage") == 0) {
        if (single_line(p, e) != 0)
            return p->rc;
        if (crs_parse_bool(e->value, &cfg->salvage) != 0)
            return fail(p, e->line, CRS_ECONFIG, "bad value for 'salvage': expected true or false");
        return 0;
    }
    if (strcmp(e->key, "ca_account") == 0)
        return apply_string(p, e, &cfg->ca_account);
    if (strcmp(e->key, "log_max_size") == 0)
        return apply_size(p, e, &cfg->log_max_size);
    if (strcmp(e->key, "log_keep") == 0)
        return apply_u32(p, e, 0, 1000, "a number of files", &cfg->log_keep);
    if (strcmp(e->key, "metrics_listen") == 0)
        return apply_string(p, e, &cfg->metrics_listen);
    if (strcmp(e->key, "retention") == 0)
        return apply_duration(p, e, MS_SECOND, 3650 * MS_DAY, &cfg->retention_ms);
    if (strcmp(e->key, "dead_retention") == 0)
        return apply_duration(p, e, MS_SECOND, 3650 * MS_DAY, &cfg->dead_retention_ms);
    if (strcmp(e->key, "dedup_retention") == 0)
        return apply_duration(p, e, MS_SECOND, 3650 * MS_DAY, &cfg->dedup_retention_ms);
    if (strcmp(e->key, "catchup") == 0) {
        if (single_line(p, e) != 0)
            return p->rc;
        if (crs_parse_bool(e->value, &cfg->catchup) != 0)
            return fail(p, e->line, CRS_ECONFIG, "bad value for 'catchup': expected on or off");
        return 0;
    }
    if (strcmp(e->key, "catchup_interval") == 0)
        return apply_duration(p, e, MS_SECOND, 30 * MS_DAY, &cfg->catchup_interval_ms);
    if (strcmp(e->key, "catchup_ca") == 0)
        return apply_string(p, e, &cfg->catchup_ca);
    if (strcmp(e->key, "catchup_csv") == 0)
        return apply_string(p, e, &cfg->catchup_csv);
    return fail(p, e->line, CRS_ECONFIG, "unknown key '%.*s' in [broker]", QUOTE_MAX, e->key);
}

static int end_broker(struct parser *p)
{
    size_t i;

    for (i = 0; i < p->nentries; i++)
        if (apply_broker_key(p, &p->entries[i]) != 0)
            return p->rc;
    if (p->cfg->state_dir == NULL)
        return fail(p, p->section_line, CRS_ECONFIG, "[broker]: missing required key 'state_dir'");
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * [alerts]
 * ------------------------------------------------------------------------------------------- */

static int lead_cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * A list of lead times ("30d, 7d, 1d"), or off/none for no stage. Kept longest first without
 * duplicates, which is the order expiry.c walks them in.
 */
static int apply_leads(struct parser *p, const struct entry *e, int64_t *dst, size_t *n)
{
    char **words = NULL;
    size_t count = 0, i, k = 0;
    int64_t v[CRS_ALERT_STAGES_MAX];

    if (single_line(p, e) != 0)
        return p->rc;
    if (crs_ascii_casecmp(e->value, "off") == 0 || crs_ascii_casecmp(e->value, "none") == 0) {
        *n = 0;
        return 0;
    }
    if (crs_split_list(e->value, &words, &count) != 0)
        return fail_nomem(p, e->line);
    if (count == 0 || count > CRS_ALERT_STAGES_MAX) {
        crs_strv_free(words);
        return fail(p, e->line, CRS_ECONFIG,
                    "bad value for '%s': expected 1 to %d durations such as 30d, 7d, 1d, or off",
                    e->key, CRS_ALERT_STAGES_MAX);
    }
    for (i = 0; i < count; i++) {
        if (crs_parse_duration_ms(words[i], &v[i]) != 0 || v[i] < MS_SECOND ||
            v[i] > 3650 * MS_DAY) {
            fail(p, e->line, CRS_ECONFIG,
                 "bad value for '%s': '%.*s' is not a duration from 1s to 3650d (such as 30d)",
                 e->key, QUOTE_MAX, words[i]);
            crs_strv_free(words);
            return p->rc;
        }
    }
    crs_strv_free(words);
    qsort(v, count, sizeof(v[0]), lead_cmp_desc);
    for (i = 0; i < count; i++)
        if (k == 0 || v[i] != dst[k - 1])
            dst[k++] = v[i];
    *n = k;
    return 0;
}

static int apply_alerts_key(struct parser *p, const struct entry *e)
{
    struct crs_alerts_config *a = &p->cfg->alerts;

    if (strcmp(e->key, "expiry_warn") == 0)
        return apply_leads(p, e, a->expiry_warn_ms, &a->nexpiry_warn);
    if (strcmp(e->key, "crl_warn") == 0)
        return apply_leads(p, e, a->crl_warn_ms, &a->ncrl_warn);
    if (strcmp(e->key, "expired") == 0) {
        if (single_line(p, e) != 0)
            return p->rc;
        if (crs_ascii_casecmp(e->value, "auto") == 0) {
            a->expired = CRS_ALERT_AUTO;
            return 0;
        }
        if (crs_parse_bool(e->value, &a->expired) != 0)
            return fail(p, e->line, CRS_ECONFIG,
                        "bad value for 'expired': expected on, off or auto");
        return 0;
    }
    if (strcmp(e->key, "expiry_skip_renewed") == 0) {
        if (single_line(p, e) != 0)
            return p->rc;
        if (crs_parse_bool(e->value, &a->skip_renewed) != 0)
            return fail(p, e->line, CRS_ECONFIG,
                        "bad value for 'expiry_skip_renewed': expected true or false");
        return 0;
    }
    if (strcmp(e->key, "batch") == 0)
        return apply_u32(p, e, 1, 100000, "a number of alerts", &a->batch);
    return fail(p, e->line, CRS_ECONFIG, "unknown key '%.*s' in [alerts]", QUOTE_MAX, e->key);
}

static int end_alerts(struct parser *p)
{
    size_t i;

    for (i = 0; i < p->nentries; i++)
        if (apply_alerts_key(p, &p->entries[i]) != 0)
            return p->rc;
    return 0;
}

static int apply_events(struct parser *p, struct entry *e, struct crs_sink_config *sc)
{
    char msg[128] = "";
    char *c;

    /* A list that spans lines is separated by its line breaks as well. */
    for (c = e->value; *c != '\0'; c++)
        if (*c == '\n')
            *c = ' ';
    if (crs_event_mask_parse(e->value, &sc->events, msg, sizeof(msg)) != 0)
        return fail(p, e->line, CRS_ECONFIG, "bad value for 'events': %s",
                    msg[0] != '\0' ? msg : "expected event names such as issued, revoked");
    if (sc->events == 0)
        return fail(p, e->line, CRS_ECONFIG, "bad value for 'events': no event selected");
    return 0;
}

static int apply_templates(struct parser *p, struct entry *e, struct crs_sink_config *sc)
{
    char *c;
    int rc;

    for (c = e->value; *c != '\0'; c++)
        if (*c == '\n')
            *c = ',';
    crs_strv_free(sc->templates);
    sc->templates = NULL;
    sc->ntemplates = 0;
    rc = crs_split_list(e->value, &sc->templates, &sc->ntemplates);
    if (rc == CRS_ENOMEM)
        return fail_nomem(p, e->line);
    if (rc != 0 || sc->ntemplates == 0)
        return fail(p, e->line, CRS_ECONFIG,
                    "bad value for 'templates': expected certificate template names or OIDs "
                    "separated by commas");
    return 0;
}

static int apply_sink_key(struct parser *p, struct entry *e, struct crs_sink_config *sc)
{
    char msg[256] = "";
    int rc;

    if (strcmp(e->key, "events") == 0)
        return apply_events(p, e, sc);
    if (strcmp(e->key, "templates") == 0)
        return apply_templates(p, e, sc);
    if (strcmp(e->key, "max_attempts") == 0)
        return apply_u32(p, e, 1, 1000, "a number of attempts", &sc->max_attempts);
    if (strcmp(e->key, "concurrency") == 0)
        return apply_u32(p, e, 1, 256, "a number of parallel deliveries", &sc->concurrency);
    if (strcmp(e->key, "max_age") == 0)
        return apply_duration(p, e, MS_SECOND, 3650 * MS_DAY, &sc->max_age_ms);
    if (strcmp(e->key, "backoff_initial") == 0)
        return apply_duration(p, e, 1, 7 * MS_DAY, &sc->backoff_initial_ms);
    if (strcmp(e->key, "backoff_max") == 0)
        return apply_duration(p, e, 1, 7 * MS_DAY, &sc->backoff_max_ms);
    if (strcmp(e->key, "timeout") == 0)
        return apply_duration(p, e, 1, MS_DAY, &sc->timeout_ms);

    rc = sc->type->settings->set(sc->typed, e->key, e->value, msg, sizeof(msg));
    if (rc == 0)
        return 0;
    if (rc == CRS_ENOMEM)
        return fail_nomem(p, e->line);
    if (rc == CRS_ENOENT)
        return fail(p, e->line, CRS_ECONFIG, "unknown key '%.*s' for sink type '%s'", QUOTE_MAX,
                    e->key, sc->type->name);
    return fail(p, e->line, CRS_ECONFIG, "bad value for '%s': %s", e->key,
                msg[0] != '\0' ? msg : crs_strerror(rc));
}

static const struct entry *find_entry(const struct parser *p, const char *key)
{
    size_t i;

    for (i = 0; i < p->nentries; i++)
        if (strcmp(p->entries[i].key, key) == 0)
            return &p->entries[i];
    return NULL;
}

/* True for a key the sink type accepts several times (each occurrence goes to set()). */
static int is_repeatable(const struct crs_sink_type *type, const char *key)
{
    const char *const *k;

    for (k = type->settings->repeatable_keys; k != NULL && *k != NULL; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

/* Appends a zeroed sink with the documented defaults; the caller owns nothing on failure. */
static struct crs_sink_config *add_sink(struct crs_config *cfg)
{
    struct crs_sink_config *v, *sc;

    v = crs_realloc(cfg->sinks, (cfg->nsinks + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    cfg->sinks = v;
    sc = &v[cfg->nsinks++];
    memset(sc, 0, sizeof(*sc));
    sc->events = CRS_EVENT_ALL;
    sc->max_attempts = 12;
    sc->max_age_ms = 7 * MS_DAY;
    sc->backoff_initial_ms = 1 * MS_SECOND;
    sc->backoff_max_ms = 10 * MS_MINUTE;
    sc->concurrency = 4;
    sc->timeout_ms = 30 * MS_SECOND;
    return sc;
}

static int end_sink(struct parser *p)
{
    const struct crs_sink_type *type;
    const struct entry *te, *bi, *bm;
    struct crs_sink_config *sc;
    char msg[256] = "";
    size_t i;
    int rc;

    te = find_entry(p, "type");
    if (te == NULL)
        return fail(p, p->section_line, CRS_ECONFIG, "[sink.%s]: missing required key 'type'",
                    p->sink_name);
    if (single_line(p, te) != 0)
        return p->rc;
    type = crs_sink_type_find(te->value);
    if (type == NULL)
        return fail(p, te->line, CRS_ECONFIG, "bad value for 'type': unknown sink type '%.*s'",
                    QUOTE_MAX, te->value);

    /* From here on the sink belongs to cfg, so crs_config_free() cleans up after any error. */
    sc = add_sink(p->cfg);
    if (sc == NULL)
        return fail_nomem(p, p->section_line);
    sc->name = p->sink_name;
    p->sink_name = NULL;
    sc->type = type;
    sc->line = p->section_line;
    rc = type->settings->init(&sc->typed);
    if (rc != 0)
        return rc == CRS_ENOMEM ? fail_nomem(p, p->section_line)
                                : fail(p, p->section_line, CRS_ECONFIG, "[sink.%s]: %s", sc->name,
                                       crs_strerror(rc));

    for (i = 0; i < p->nentries; i++) {
        struct entry *e = &p->entries[i];
        const struct entry *first;

        if (e == te)
            continue;
        first = find_entry(p, e->key);
        if (first != e && !is_repeatable(type, e->key))
            return fail(p, e->line, CRS_ECONFIG, "duplicate key '%.*s' (first set on line %d)",
                        QUOTE_MAX, e->key, first->line);
        if (apply_sink_key(p, e, sc) != 0)
            return p->rc;
    }

    if (sc->backoff_max_ms < sc->backoff_initial_ms) {
        /* Blame whichever of the two keys the file set last: that is where the conflict arose. */
        int line = p->section_line;

        bi = find_entry(p, "backoff_initial");
        bm = find_entry(p, "backoff_max");
        if (bi != NULL)
            line = bi->line;
        if (bm != NULL && bm->line > line)
            line = bm->line;
        return fail(p, line, CRS_ECONFIG,
                    "bad value: backoff_max must not be less than backoff_initial");
    }

    rc = type->settings->finish(sc->typed, sc, msg, sizeof(msg));
    if (rc == CRS_ENOMEM)
        return fail_nomem(p, p->section_line);
    if (rc != 0)
        return fail(p, p->section_line, CRS_ECONFIG, "[sink.%s]: %s", sc->name,
                    msg[0] != '\0' ? msg : crs_strerror(rc));
    return 0;
}

static void clear_entries(struct parser *p)
{
    size_t i;

    for (i = 0; i < p->nentries; i++) {
        crs_free(p->entries[i].key);
        crs_free(p->entries[i].value);
    }
    p->nentries = 0;
}

/* Applies the buffered keys of the section that just ended. */
static int end_section(struct parser *p)
{
    int rc = 0;

    if (p->rc == 0) {
        if (p->kind == SECTION_BROKER)
            rc = end_broker(p);
        else if (p->kind == SECTION_SINK)
            rc = end_sink(p);
        else if (p->kind == SECTION_ALERTS)
            rc = end_alerts(p);
    }
    clear_entries(p);
    crs_free(p->sink_name);
    p->sink_name = NULL;
    p->kind = SECTION_NONE;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Lines
 * ------------------------------------------------------------------------------------------- */

static int valid_sink_name(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > SINK_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int begin_section(struct parser *p, const char *name, size_t n)
{
    size_t i;

    if (n == 6 && memcmp(name, "broker", 6) == 0) {
        if (p->broker_line != 0)
            return fail(p, p->lineno, CRS_ECONFIG, "duplicate section [broker] (first on line %d)",
                        p->broker_line);
        p->broker_line = p->lineno;
        p->kind = SECTION_BROKER;
        p->section_line = p->lineno;
        return 0;
    }
    if (n == 6 && memcmp(name, "alerts", 6) == 0) {
        if (p->alerts_line != 0)
            return fail(p, p->lineno, CRS_ECONFIG, "duplicate section [alerts] (first on line %d)",
                        p->alerts_line);
        p->alerts_line = p->lineno;
        p->kind = SECTION_ALERTS;
        p->section_line = p->lineno;
        return 0;
    }
    if (n >= 5 && memcmp(name, "sink.", 5) == 0) {
        name += 5;
        n -= 5;
        if (!valid_sink_name(name, n))
            return fail(p, p->lineno, CRS_ECONFIG,
                        "[sink.%.*s]: invalid sink name (use 1 to %d of A-Z a-z 0-9 _ -)",
                        (int)(n < QUOTE_MAX ? n : QUOTE_MAX), name, SINK_NAME_MAX);
        for (i = 0; i < p->cfg->nsinks; i++) {
            const struct crs_sink_config *sc = &p->cfg->sinks[i];
            if (strlen(sc->name) == n && memcmp(sc->name, name, n) == 0)
                return fail(p, p->lineno, CRS_ECONFIG,
                            "duplicate sink name '%s' (first defined on line %d)", sc->name,
                            sc->line);
        }
        p->sink_name = crs_strndup(name, n);
        if (p->sink_name == NULL)
            return fail_nomem(p, p->lineno);
        p->kind = SECTION_SINK;
        p->section_line = p->lineno;
        return 0;
    }
    return fail(p, p->lineno, CRS_ECONFIG,
                "unknown section [%.*s] (expected [broker], [alerts] or [sink.NAME])",
                (int)(n < QUOTE_MAX ? n : QUOTE_MAX), name);
}

/* Appends text to the value of the section's last key, joined by a line break. */
static int add_continuation(struct parser *p, const char *text, size_t n)
{
    struct entry *e = &p->entries[p->nentries - 1];
    char *v;

    if (e->len + 1 + n > CONFIG_VALUE_MAX)
        return fail(p, p->lineno, CRS_ECONFIG, "value of '%s' too long (at most %u bytes)", e->key,
                    CONFIG_VALUE_MAX);
    v = crs_realloc(e->value, e->len + 1 + n + 1);
    if (v == NULL)
        return fail_nomem(p, p->lineno);
    v[e->len] = '\n';
    memcpy(v + e->len + 1, text, n);
    v[e->len + 1 + n] = '\0';
    e->value = v;
    e->len += 1 + n;
    e->multiline = 1;
    return 0;
}

/* Buffers one `key = value` of the current section. */
static int add_key(struct parser *p, const struct crs_ini_item *it)
{
    struct entry *e;

    if (p->kind == SECTION_NONE)
        return fail(p, p->lineno, CRS_ECONFIG,
                    "key '%.*s' outside of any section (put it under [broker] or [sink.NAME])",
                    (int)(it->namelen < QUOTE_MAX ? it->namelen : QUOTE_MAX), it->name);
    if (p->nentries == p->capentries) {
        size_t cap = p->capentries ? p->capentries * 2 : 16;
        e = crs_realloc(p->entries, cap * sizeof(*e));
        if (e == NULL)
            return fail_nomem(p, p->lineno);
        p->entries = e;
        p->capentries = cap;
    }
    e = &p->entries[p->nentries];
    e->key = crs_strndup(it->name, it->namelen);
    e->value = crs_strndup(it->value, it->valuelen);
    if (e->key == NULL || e->value == NULL) {
        crs_free(e->key);
        crs_free(e->value);
        return fail_nomem(p, p->lineno);
    }
    e->len = it->valuelen;
    e->line = p->lineno;
    e->multiline = 0;
    /* In a sink section the type, which may come later, says which keys may repeat: those
     * duplicates are found when the section ends. */
    if (p->kind != SECTION_SINK || strcmp(e->key, "type") == 0) {
        const struct entry *first = find_entry(p, e->key);
        if (first != NULL) {
            fail(p, p->lineno, CRS_ECONFIG, "duplicate key '%.*s' (first set on line %d)",
                 QUOTE_MAX, e->key, first->line);
            crs_free(e->key);
            crs_free(e->value);
            return p->rc;
        }
    }
    p->nentries++;
    return 0;
}

/* Reads every item of the file and applies it; stops at the first error. */
static int read_items(struct parser *p, const char *text, size_t len)
{
    struct crs_ini ini;
    struct crs_ini_item it;
    char msg[128];
    int rc;

    if (crs_ini_init(&ini, text, len, msg, sizeof(msg)) != 0)
        return fail(p, ini.lineno, CRS_ECONFIG, "%s", msg);
    while ((rc = crs_ini_next(&ini, &it, msg, sizeof(msg))) == 1) {
        p->lineno = it.line;
        if (it.kind == CRS_INI_SECTION) {
            if (end_section(p) != 0 || begin_section(p, it.name, it.namelen) != 0)
                return p->rc;
        } else if (it.kind == CRS_INI_KEY) {
            if (add_key(p, &it) != 0)
                return p->rc;
        } else if (add_continuation(p, it.value, it.valuelen) != 0) {
            return p->rc;
        }
    }
    if (rc != 0)
        return fail(p, ini.lineno, rc, "%s", msg);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------- */

static int config_new(const char *name, struct crs_config **out)
{
    struct crs_config *cfg;

    *out = NULL;
    cfg = crs_calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return CRS_ENOMEM;
    cfg->log_level = CRS_LOG_INFO;
    cfg->max_frame = CRS_FRAME_MAX;
    cfg->commit_batch_max = 1024;
    cfg->retention_ms = 30 * MS_DAY;
    cfg->log_max_size = 10u << 20;
    cfg->log_keep = 5;
    cfg->dead_retention_ms = 90 * MS_DAY;
    cfg->dedup_retention_ms = 400 * MS_DAY;
    cfg->catchup_interval_ms = 60 * 60 * MS_SECOND;
    cfg->alerts.expiry_warn_ms[0] = 30 * MS_DAY;
    cfg->alerts.expiry_warn_ms[1] = 7 * MS_DAY;
    cfg->alerts.expiry_warn_ms[2] = MS_DAY;
    cfg->alerts.nexpiry_warn = 3;
    cfg->alerts.crl_warn_ms[0] = MS_DAY;
    cfg->alerts.ncrl_warn = 1;
    cfg->alerts.expired = CRS_ALERT_AUTO;
    cfg->alerts.skip_renewed = 1;
    cfg->alerts.batch = 500;
    cfg->path = crs_strdup(name);
    cfg->listen = crs_default_pipe();
    cfg->spool_dir = crs_default_spool_dir();
    if (cfg->path == NULL || cfg->listen == NULL || cfg->spool_dir == NULL) {
        crs_config_free(cfg);
        return CRS_ENOMEM;
    }
    *out = cfg;
    return 0;
}

static int config_parse(const char *name, const char *text, size_t len, struct crs_config **out,
                        char *err, size_t errlen)
{
    struct parser p;

    memset(&p, 0, sizeof(p));
    p.name = name;
    p.err = err;
    p.errlen = errlen;

    if (config_new(name, &p.cfg) != 0)
        return fail_nomem(&p, 0);
    if (read_items(&p, text, len) == 0)
        end_section(&p);
    if (p.rc == 0 && p.broker_line == 0)
        fail(&p, 1, CRS_ECONFIG, "missing required section [broker] (it must set state_dir)");
    end_section(&p); /* releases what an error left buffered */
    crs_free(p.entries);
    if (p.rc != 0) {
        crs_config_free(p.cfg);
        return p.rc;
    }
    *out = p.cfg;
    return 0;
}

int crs_config_load_string(const char *name, const char *text, struct crs_config **out, char *err,
                           size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (name == NULL || text == NULL || out == NULL)
        return CRS_EINVAL;
    return config_parse(name, text, strlen(text), out, err, errlen);
}

int crs_config_load(const char *path, struct crs_config **out, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    const char *why;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || out == NULL)
        return CRS_EINVAL;

    rc = crs_fs_read_all(path, CONFIG_FILE_MAX, &data, &len);
    if (rc != 0) {
        switch (rc) {
        case CRS_ENOENT:
            why = "cannot open: no such file or directory";
            break;
        case CRS_EACCES:
            why = "cannot open: permission denied";
            break;
        case CRS_EINVAL:
            why = "cannot open: not a regular file";
            break;
        case CRS_ETOOBIG:
            why = "file too large (at most 1 MiB)";
            break;
        case CRS_ENOMEM:
            why = "out of memory";
            break;
        default:
            why = NULL;
            break;
        }
        if (err != NULL && errlen > 0) {
            if (why != NULL)
                snprintf(err, errlen, "%s:0: %s", path, why);
            else
                snprintf(err, errlen, "%s:0: cannot open: %s", path, crs_strerror(rc));
        }
        return (rc == CRS_ENOENT || rc == CRS_ENOMEM) ? rc : CRS_ECONFIG;
    }
    rc = config_parse(path, (const char *)data, len, out, err, errlen);
    crs_free(data);
    return rc;
}

void crs_config_free(struct crs_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nsinks; i++) {
        struct crs_sink_config *sc = &cfg->sinks[i];
        if (sc->type != NULL && sc->type->settings->free != NULL)
            sc->type->settings->free(sc->typed);
        crs_strv_free(sc->templates);
        crs_free(sc->name);
    }
    crs_free(cfg->sinks);
    crs_free(cfg->path);
    crs_free(cfg->listen);
    crs_free(cfg->state_dir);
    crs_free(cfg->spool_dir);
    crs_free(cfg->metrics_listen);
    crs_free(cfg->catchup_ca);
    crs_free(cfg->catchup_csv);
    crs_free(cfg->log_file);
    crs_free(cfg->ca_account);
    crs_free(cfg);
}
