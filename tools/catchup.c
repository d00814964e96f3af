/*
 * `certrelay catchup`: events the exit module never saw, rebuilt from the CA database (ICertView2
 * on Windows) or from a `certutil -view csv` export (--from-csv, anywhere), and submitted to the
 * broker in batches through the admin channel (catchup-submit). The broker's dedup index drops
 * what it already holds, so a run over a period the module saw delivers nothing twice. --dry-run
 * asks the broker which events are new (catchup-check) and lists them, storing nothing.
 *
 *   certrelay catchup [--ca CONFIG] (--since TIME | --from-request N) [--kinds LIST] [--dry-run]
 *                     [--from-csv FILE] [--config FILE | --pipe PATH] [--json]
 *   certrelay catchup --status            the broker's watermark of each CA
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/base64.h"
#include "certrelay/catchup.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "client.h"
#include "commands.h"

/* One submission: at most this many events, and this many bytes of packed events (the broker's
 * limits, reconcile.h, are 256 and 8 MiB). */
#define CATCHUP_BATCH_EVENTS 256u
#define CATCHUP_BATCH_BYTES  (4u * 1024u * 1024u)
/* Largest --from-csv file. */
#define CATCHUP_CSV_MAX ((uint64_t)16 << 30)

struct pending_meta {
    int64_t request_id;
    uint32_t kind;
    int64_t when_ms;
    char subject[256];
};

struct catchup_run {
    const struct admin_target *t;
    const char *ca;
    uint32_t kinds;
    int dry_run;
    int json;
    json_t *batch; /* base64 strings */
    struct pending_meta meta[CATCHUP_BATCH_EVENTS];
    size_t batch_bytes;
    json_t *listing; /* --json: every result */
    int code;        /* an admin_call failure ends the run */
    uint64_t rows, events, stored, duplicates, rejected, bad_rows, build_errors;
};

static void catchup_usage(FILE *f)
{
    fprintf(f, "usage: certrelay catchup [--ca CONFIG] (--since TIME | --from-request N)\n"
               "                         [--kinds issued,revoked,pending,denied] [--dry-run]\n"
               "                         [--from-csv FILE] [--config FILE | --pipe PATH] [--json]\n"
               "       certrelay catchup --status [--config FILE | --pipe PATH] [--json]\n"
               "       TIME: an RFC 3339 time or a duration back from now (30m, 2h, 7d)\n"
               "       FILE: certutil -view -gmt csv > FILE (display or schema column names)\n"
               "       --ca: the CA config string the events carry (default: the one CA the broker "
               "knows)\n"
               "exit: 0 done, 1 failure (events rejected, rows skipped), 2 usage, 3 broker not "
               "running, 4 not authorized\n");
}

/* Sends the batch (catchup-submit, or catchup-check for a dry run) and counts the answers. */
static int catchup_flush(struct catchup_run *run)
{
    json_t *params, *res = NULL, *results, *o;
    size_t i;
    int code;

    if (json_array_size(run->batch) == 0 || run->code != 0)
        return run->code;
    params = json_pack("{s:O}", "events", run->batch);
    if (params == NULL)
        return run->code = ADMIN_EXIT_FAILED;
    code = admin_call(run->t, run->dry_run ? "catchup-check" : "catchup-submit", params, &res);
    json_decref(params);
    if (code != 0)
        return run->code = code;
    results = json_object_get(res, "results");
    json_array_foreach(results, i, o)
    {
        const char *outcome = json_string_value(json_object_get(o, "outcome"));
        const struct pending_meta *m = i < CATCHUP_BATCH_EVENTS ? &run->meta[i] : NULL;
        char when[40];

        if (outcome == NULL || m == NULL)
            continue;
        admin_fmt_time(m->when_ms, when, sizeof(when));
        if (strcmp(outcome, "stored") == 0 || strcmp(outcome, "new") == 0) {
            run->stored++;
            if (run->dry_run && !run->json)
                printf("%-10lld %-8s %-24s %s\n", (long long)m->request_id, crs_event_name(m->kind),
                       when, m->subject);
        } else if (strcmp(outcome, "duplicate") == 0) {
            run->duplicates++;
        } else {
            run->rejected++;
            fprintf(stderr, "certrelay catchup: request %lld, %s: rejected: %s\n",
                    (long long)m->request_id, crs_event_name(m->kind),
                    json_string_value(json_object_get(o, "reason")));
        }
        if (run->listing != NULL) {
            json_object_set_new(o, "when_ms", json_integer(m->when_ms));
            json_object_set_new(o, "subject", json_string(m->subject));
            json_array_append(run->listing, o);
        }
    }
    json_decref(res);
    json_array_clear(run->batch);
    run->batch_bytes = 0;
    return 0;
}

static int catchup_on_row(void *ctx, const struct crs_catchup_row *row)
{
    struct catchup_run *run = ctx;
    struct crs_catchup_events evs;
    int rc;

    run->rows++;
    rc = crs_catchup_row_events(row, run->ca, run->kinds, &evs);
    if (rc == CRS_ENOMEM)
        return rc;
    if (rc != 0) {
        run->build_errors++;
        fprintf(stderr, "certrelay catchup: request %lld: no event built: %s\n",
                (long long)crs_catchup_row_request_id(row), crs_strerror(rc));
        return 0;
    }
    for (size_t i = 0; i < evs.count; i++) {
        const struct crs_catchup_event *e = &evs.ev[i];
        char *b64;

        if (json_array_size(run->batch) >= CATCHUP_BATCH_EVENTS ||
            run->batch_bytes + e->packed_len > CATCHUP_BATCH_BYTES) {
            if (catchup_flush(run) != 0)
                break;
        }
        b64 = crs_base64_encode(e->packed, e->packed_len);
        if (b64 == NULL || json_array_append_new(run->batch, json_string(b64)) != 0) {
            crs_free(b64);
            crs_catchup_events_free(&evs);
            return CRS_ENOMEM;
        }
        crs_free(b64);
        struct pending_meta *m = &run->meta[json_array_size(run->batch) - 1];
        m->request_id = e->request_id;
        m->kind = e->kind;
        m->when_ms = e->when_ms;
        snprintf(m->subject, sizeof(m->subject), "%s", e->subject);
        run->batch_bytes += e->packed_len;
        run->events++;
    }
    crs_catchup_events_free(&evs);
    /* A broker that stopped answering ends the read. */
    return run->code != 0 ? 1 : 0;
}

static void catchup_bad_row(void *ctx, uint64_t line, const char *why)
{
    struct catchup_run *run = ctx;

    run->bad_rows++;
    fprintf(stderr, "certrelay catchup: line %llu skipped: %s\n", (unsigned long long)line, why);
}

#ifdef _WIN32
/* A CA database row with a value past the caps or of the wrong type: reported and skipped. */
static void catchup_bad_view_row(void *ctx, uint64_t request_id, const char *why)
{
    struct catchup_run *run = ctx;

    run->bad_rows++;
    fprintf(stderr, "certrelay catchup: a row skipped: %s\n", why);
}
#endif

/* The CA to stamp on the events when --ca is not given: the one CA the broker has seen. */
static int catchup_default_ca(const struct admin_target *t, char **out)
{
    json_t *res = NULL, *marks;
    int code = admin_call(t, "catchup-status", NULL, &res);

    *out = NULL;
    if (code != 0)
        return code;
    marks = json_object_get(res, "watermarks");
    if (json_array_size(marks) != 1) {
        fprintf(stderr,
                "certrelay catchup: the broker knows %zu CAs; name the one to catch up with "
                "--ca CONFIG\n",
                json_array_size(marks));
        json_decref(res);
        return ADMIN_EXIT_USAGE;
    }
    *out = crs_strdup(json_string_value(json_object_get(json_array_get(marks, 0), "ca")));
    json_decref(res);
    return *out != NULL ? 0 : ADMIN_EXIT_FAILED;
}

static int catchup_status(const struct admin_target *t)
{
    json_t *res = NULL, *marks, *m;
    size_t i;
    int code = admin_call(t, "catchup-status", NULL, &res);

    if (code != 0)
        return code;
    if (t->json) {
        admin_print_json(res);
    } else {
        marks = json_object_get(res, "watermarks");
        printf("%-32s %10s %-24s %-24s %8s\n", "CA", "REQUEST", "LATEST", "CAUGHT UP", "KEYS");
        json_array_foreach(marks, i, m)
        {
            char latest[40], caught[40];
            json_t *cu = json_object_get(m, "caught_up_ms");
            admin_fmt_time(json_integer_value(json_object_get(m, "max_when_ms")), latest,
                           sizeof(latest));
            admin_fmt_time(json_is_integer(cu) ? json_integer_value(cu) : -1, caught,
                           sizeof(caught));
            printf("%-32s %10lld %-24s %-24s %8lld\n", json_string_value(json_object_get(m, "ca")),
                   (long long)json_integer_value(json_object_get(m, "max_request_id")), latest,
                   caught, (long long)json_integer_value(json_object_get(m, "keys")));
        }
    }
    json_decref(res);
    return 0;
}

int tool_catchup_main(int argc, char **argv)
{
    struct admin_target t;
    struct crs_catchup_filter flt = {0, 0, 0};
    struct catchup_run run;
    const char *csv = NULL, *ca = NULL;
    char *ca_owned = NULL;
    int status = 0, have_from = 0, code, i;
    char err[512] = "";

    memset(&run, 0, sizeof(run));
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            catchup_usage(stdout);
            return ADMIN_EXIT_OK;
        }
    }
    code = admin_target_init(&t, &argc, argv);
    for (i = 1; i < argc && code == 0; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(opt, "--dry-run") == 0) {
            run.dry_run = 1;
            continue;
        }
        if (strcmp(opt, "--status") == 0) {
            status = 1;
            continue;
        }
        if (val == NULL) {
            fprintf(stderr, "certrelay catchup: unexpected '%s'\n", opt);
            code = ADMIN_EXIT_USAGE;
            break;
        }
        i++;
        if (strcmp(opt, "--ca") == 0) {
            ca = val;
        } else if (strcmp(opt, "--from-csv") == 0) {
            csv = val;
        } else if (strcmp(opt, "--since") == 0) {
            if (admin_parse_since(val, &flt.since_ms) != 0 || flt.since_ms <= 0) {
                fprintf(stderr, "certrelay catchup: --since %s: not a time or duration\n", val);
                code = ADMIN_EXIT_USAGE;
            }
            have_from = 1;
        } else if (strcmp(opt, "--from-request") == 0) {
            char *end = NULL;
            long long n = strtoll(val, &end, 10);
            if (end == val || *end != '\0' || n < 1) {
                fprintf(stderr, "certrelay catchup: --from-request %s: not a request id\n", val);
                code = ADMIN_EXIT_USAGE;
            }
            flt.from_request = n;
            have_from = 1;
        } else if (strcmp(opt, "--kinds") == 0) {
            char msg[128] = "";
            if (crs_event_mask_parse(val, &flt.kinds, msg, sizeof(msg)) != 0 ||
                (flt.kinds & ~CRS_CATCHUP_KINDS) != 0 || flt.kinds == 0) {
                fprintf(stderr,
                        "certrelay catchup: --kinds %s: %s (catch-up rebuilds issued, revoked, "
                        "pending and denied)\n",
                        val, msg[0] ? msg : "not a list of those kinds");
                code = ADMIN_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "certrelay catchup: unexpected '%s'\n", opt);
            code = ADMIN_EXIT_USAGE;
        }
    }
    if (code == 0 && !status && !have_from && csv == NULL) {
        fprintf(stderr, "certrelay catchup: --since or --from-request is required\n");
        code = ADMIN_EXIT_USAGE;
    }
#ifndef _WIN32
    if (code == 0 && !status && csv == NULL) {
        fprintf(stderr, "certrelay catchup: the CA database can be read only on the CA (Windows); "
                        "give a certutil export with --from-csv FILE\n");
        code = ADMIN_EXIT_USAGE;
    }
#endif
    if (code == ADMIN_EXIT_USAGE)
        catchup_usage(stderr);
    if (code != 0)
        goto cleanup;
    if (status) {
        code = catchup_status(&t);
        goto cleanup;
    }
    if (ca == NULL) {
        code = catchup_default_ca(&t, &ca_owned);
        if (code != 0)
            goto cleanup;
        ca = ca_owned;
    }

    run.t = &t;
    run.ca = ca;
    run.kinds = flt.kinds ? flt.kinds : CRS_CATCHUP_KINDS;
    run.json = t.json;
    run.batch = json_array();
    run.listing = t.json ? json_array() : NULL;
    if (run.batch == NULL || (t.json && run.listing == NULL)) {
        code = ADMIN_EXIT_FAILED;
        goto cleanup;
    }
    if (run.dry_run && !t.json)
        printf("%-10s %-8s %-24s %s\n", "REQUEST", "KIND", "TIME", "SUBJECT");

    int rc;
    if (csv != NULL) {
        FILE *f = NULL;
        rc = crs_fs_open_read(csv, CATCHUP_CSV_MAX, &f);
        if (rc != 0) {
            fprintf(stderr, "certrelay catchup: --from-csv %s: %s\n", csv, crs_strerror(rc));
            code = ADMIN_EXIT_FAILED;
            goto cleanup;
        }
        struct crs_catchup_csv_stats st;
        rc = crs_catchup_read_csv2(f, &flt, catchup_on_row, catchup_bad_row, &run, &st, err,
                                   sizeof(err));
        fclose(f);
    } else {
#ifdef _WIN32
        struct crs_catchup_csv_stats st;
        rc = crs_catchup_read_view2(ca, &flt, catchup_on_row, catchup_bad_view_row, &run, &st, err,
                                    sizeof(err));
#else
        rc = CRS_ENOTSUP;
#endif
    }
    if (rc == 0 || rc == 1)
        catchup_flush(&run);
    if (run.code != 0) {
        code = run.code;
        goto cleanup;
    }
    if (rc != 0 && rc != 1) {
        fprintf(stderr, "certrelay catchup: %s\n", err[0] ? err : crs_strerror(rc));
        code = ADMIN_EXIT_FAILED;
        goto cleanup;
    }
    if (t.json) {
        json_t *out =
            json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "ca", ca, "dry_run",
                      run.dry_run, "rows", (json_int_t)run.rows, "events", (json_int_t)run.events,
                      run.dry_run ? "new" : "stored", (json_int_t)run.stored, "duplicates",
                      (json_int_t)run.duplicates, "rejected", (json_int_t)run.rejected, "bad_rows",
                      (json_int_t)(run.bad_rows + run.build_errors), "results", run.listing);
        if (out != NULL)
            admin_print_json(out);
        json_decref(out);
    } else {
        printf("%s: %llu rows read, %llu events built, %llu %s, %llu duplicates, %llu rejected, "
               "%llu bad rows\n",
               ca, (unsigned long long)run.rows, (unsigned long long)run.events,
               (unsigned long long)run.stored, run.dry_run ? "would be sent" : "stored",
               (unsigned long long)run.duplicates, (unsigned long long)run.rejected,
               (unsigned long long)(run.bad_rows + run.build_errors));
    }
    code = (run.rejected > 0 || run.bad_rows > 0 || run.build_errors > 0) ? ADMIN_EXIT_FAILED
                                                                          : ADMIN_EXIT_OK;

cleanup:
    json_decref(run.batch);
    json_decref(run.listing);
    crs_free(ca_owned);
    admin_target_free(&t);
    return code;
}
