/*
 * Catch-up (catchup/): events the exit module never saw, rebuilt from the CA database.
 *
 * A row source (the ICertView2 reader on Windows, a `certutil -view csv` export anywhere) fills one
 * struct crs_catchup_row per CA-database row, keyed by certsrv's schema column names (the names
 * ICertView uses and `certutil -view -out` accepts), and hands it to a callback. The callback turns
 * the row into the events the exit module would have sent (crs_catchup_row_events) and submits
 * them. The broker deduplicates on (CA, request id, kind, disposition minute) for every event it
 * stores (crs_catchup_event_key), so a catch-up run over a period the module saw delivers nothing
 * twice.
 */
#ifndef CERTRELAY_CATCHUP_H
#define CERTRELAY_CATCHUP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "certrelay/event.h"

/* Caps of one row: a certificate (or any binary column) larger than this, or a string longer than
 * CRS_CATCHUP_STRING_MAX bytes, is an error naming the column and the request id. */
#define CRS_CATCHUP_BINARY_MAX (64u * 1024u)
#define CRS_CATCHUP_STRING_MAX (4u * 1024u)

/* The kinds catch-up can rebuild from the CA database (the others leave no row behind). */
#define CRS_CATCHUP_KINDS                                                                          \
    (CRS_EVENT_ISSUED | CRS_EVENT_PENDING | CRS_EVENT_DENIED | CRS_EVENT_REVOKED)

/* The value of Event.origin for events built here ("live" when absent). */
#define CRS_CATCHUP_ORIGIN "catchup"

/* ---------------------------------------------------------------------------------------------
 * The row model
 * ------------------------------------------------------------------------------------------- */

struct crs_catchup_row; /* opaque, owns copies of what is set */

int crs_catchup_row_new(struct crs_catchup_row **out);
void crs_catchup_row_free(struct crs_catchup_row *row);  /* NULL ok */
void crs_catchup_row_reset(struct crs_catchup_row *row); /* reuse for the next row */
/* Setters take a schema column name ("RequestID", "Request.Disposition", "RawCertificate", ...;
 * the "Request." prefix is optional for request columns). Unknown columns are ignored (return 0).
 * CRS_ETOOBIG past the caps above (the row's error text then names the column and the request id,
 * see crs_catchup_row_error), CRS_EINVAL for a value of the wrong type or invalid UTF-8,
 * CRS_ENOMEM. */
int crs_catchup_row_set_long(struct crs_catchup_row *row, const char *column, int64_t v);
int crs_catchup_row_set_date(struct crs_catchup_row *row, const char *column, int64_t unix_ms);
int crs_catchup_row_set_string(struct crs_catchup_row *row, const char *column, const char *utf8);
int crs_catchup_row_set_binary(struct crs_catchup_row *row, const char *column, const uint8_t *p,
                               size_t n);
/* The sentence of the last failed setter ("" when none). */
const char *crs_catchup_row_error(const struct crs_catchup_row *row);
/* The row's RequestID, or -1 when it has none. */
int64_t crs_catchup_row_request_id(const struct crs_catchup_row *row);

/* ---------------------------------------------------------------------------------------------
 * Events built from a row
 * ------------------------------------------------------------------------------------------- */

/* An issued and later revoked row yields two events; nothing yields more. */
#define CRS_CATCHUP_ROW_EVENTS_MAX 2

struct crs_catchup_event {
    uint32_t kind; /* one CRS_EVENT_* bit */
    int64_t request_id;
    int64_t when_ms;   /* the disposition time of the dedup key, -1 when the row has none */
    char event_id[37]; /* UUIDv7 */
    char subject[256]; /* the common name or DN, for listings ("" when none) */
    uint8_t *packed;   /* the packed Certrelay__V1__Event (crs_free) */
    size_t packed_len;
};

struct crs_catchup_events {
    size_t count;
    struct crs_catchup_event ev[CRS_CATCHUP_ROW_EVENTS_MAX];
};

/* Builds the events the exit module would have sent for this row (an issued+later revoked row
 * yields issued and revoked; pending yields pending; denied yields denied), restricted to the
 * kinds in kind_mask, for the CA `ca_config`. Caller frees with crs_catchup_events_free. A row
 * without a RequestID or Disposition is CRS_EINVAL; a row whose disposition yields no event in
 * the mask gives count 0. */
int crs_catchup_row_events(const struct crs_catchup_row *row, const char *ca_config,
                           uint32_t kind_mask, struct crs_catchup_events *out);
/* Frees the packed buffers and zeroes *evs. NULL ok. */
void crs_catchup_events_free(struct crs_catchup_events *evs);

/* ---------------------------------------------------------------------------------------------
 * The dedup key
 * ------------------------------------------------------------------------------------------- */

/* Longest CA config string in a key (bytes of UTF-8). */
#define CRS_CATCHUP_CA_MAX 512

struct crs_catchup_key {
    char ca[CRS_CATCHUP_CA_MAX + 1]; /* the CA name (config after its last "\\"), ASCII-lowercased */
    int64_t request_id;
    uint32_t kind;  /* one CRS_EVENT_* bit */
    int64_t minute; /* the disposition time, whole minutes since 1970 UTC; -1 when absent */
};

/* The CA part of a key from a CA config string: the CA name (the part after the last backslash:
 * certsrv gives the exit module the name alone, catch-up uses "HOST\\CA Name"), ASCII-lowercased,
 * into out (CRS_CATCHUP_CA_MAX + 1 bytes suffice). 0, or CRS_EINVAL for an empty or too long name. */
int crs_catchup_ca_key(const char *config, char *out, size_t outlen);
/* The key of any event (live or caught up): 0, or CRS_ENOENT when the event has no key (a kind
 * catch-up does not rebuild, no request id, no CA config). The disposition time is
 * Request.ResolvedWhen for issued/denied, SubmittedWhen for pending, RevokedWhen for revoked. */
int crs_catchup_event_key(const Certrelay__V1__Event *ev, struct crs_catchup_key *key);
/* Whole minutes of a Unix-ms time, rounding toward minus infinity. */
int64_t crs_catchup_minute(int64_t unix_ms);

/* ---------------------------------------------------------------------------------------------
 * Row sources
 * ------------------------------------------------------------------------------------------- */

/* The restriction a source applies: rows with RequestID >= from_request (0: no bound) and whose
 * resolved or revoked time (or submitted time for pending rows) is >= since_ms (0: no bound);
 * kinds is a CRS_EVENT_* mask (0 means CRS_CATCHUP_KINDS). */
struct crs_catchup_filter {
    int64_t from_request;
    int64_t since_ms;
    uint32_t kinds;
};

/* True when the row passes the filter (the CSV reader calls it; the view reader's restriction is
 * coarser and calls it too). */
int crs_catchup_filter_match(const struct crs_catchup_filter *flt,
                             const struct crs_catchup_row *row);

/* Called once per row that passes the filter; a nonzero return stops the enumeration and is
 * returned by the source. */
typedef int (*crs_catchup_row_cb)(void *ctx, const struct crs_catchup_row *row);

/* Caps of the CSV reader. */
#define CRS_CATCHUP_CSV_LINE_MAX    (256u * 1024u) /* one record, quoted newlines included */
#define CRS_CATCHUP_CSV_ROWS_MAX    10000000u
#define CRS_CATCHUP_CSV_COLUMNS_MAX 256u

/* Statistics of a CSV read (optional out-parameter of crs_catchup_read_csv2). */
struct crs_catchup_csv_stats {
    uint64_t rows;    /* data records read */
    uint64_t matched; /* passed the filter and went to the callback */
    uint64_t bad;     /* malformed, reported and skipped */
};
/* Reports a malformed record (line number and sentence); the read goes on. */
typedef void (*crs_catchup_bad_cb)(void *ctx, uint64_t line, const char *why);

/* Reads a `certutil -view csv` export (display names or schema names in the header). 0, or the
 * callback's nonzero return, or CRS_EINVAL / CRS_ETOOBIG / CRS_EIO with err set for a file that
 * cannot be read at all (no header, no RequestID column). Malformed records are skipped. */
int crs_catchup_read_csv(FILE *f, const struct crs_catchup_filter *flt, crs_catchup_row_cb cb,
                         void *ctx, char *err, size_t errlen);
/* The same with statistics and a report of each malformed record (bad_cb may be NULL). */
int crs_catchup_read_csv2(FILE *f, const struct crs_catchup_filter *flt, crs_catchup_row_cb cb,
                          crs_catchup_bad_cb bad_cb, void *ctx, struct crs_catchup_csv_stats *stats,
                          char *err, size_t errlen);

#ifdef _WIN32
/* The most rows one view read goes through (then CRS_ETOOBIG, err naming the request id to
 * continue from with --from-request). */
#define CRS_CATCHUP_VIEW_ROWS_MAX CRS_CATCHUP_CSV_ROWS_MAX

/* Reads the CA database through ICertView2 (catchup/win/view.c): ca_config is "HOST\CA Name",
 * or the CA name alone for the CA on this machine.
 * 0, the callback's nonzero return, or a CRS_E* code with err set: CRS_EACCES (no read access to
 * the CA), CRS_ECONNREFUSED (CA not reachable), CRS_ENOENT (no such CA), CRS_ENOTSUP (CCertView
 * not registered here), CRS_ETOOBIG (a value past the row caps, naming the column and the request
 * id; or the row cap). Initialises COM on the calling thread for the call. */
int crs_catchup_read_view(const char *ca_config, const struct crs_catchup_filter *flt,
                          crs_catchup_row_cb cb, void *ctx, char *err, size_t errlen);
/* The same with statistics (rows read, matched, bad) and, when bad_cb is given, a row with a
 * value past the caps or of the wrong type reported to bad_cb (with its request id as `line`,
 * 0 when unknown) and skipped instead of ending the read. */
int crs_catchup_read_view2(const char *ca_config, const struct crs_catchup_filter *flt,
                           crs_catchup_row_cb cb, crs_catchup_bad_cb bad_cb, void *ctx,
                           struct crs_catchup_csv_stats *stats, char *err, size_t errlen);
#endif

#endif
