/*
 * The `certutil -view csv` reader: a CA database export from any machine, reconciled like the
 * database itself.
 *
 * What certutil writes (`certutil -view -gmt -restrict "RequestID>=100" -out
 * "RequestID,Request.Disposition,RawCertificate,..." csv > export.csv`):
 *
 *   "Request ID","Request Disposition","Binary Certificate","Certificate Effective Date"
 *   "0x64","20 -- Issued","-----BEGIN CERTIFICATE-----
 *   MIIDRzCCAi+gAwIBAgIT...
 *   -----END CERTIFICATE-----","12/3/2026 10:15 AM"
 *   "101","9 -- Taken Under Submission",EMPTY,EMPTY
 *
 * The header holds display names (English) or schema names; one table maps the display names to
 * the schema names of the row model, which knows each column's type. Cells are RFC 4180 fields
 * (quoted ones may hold newlines and doubled quotes); "EMPTY" is an absent value. Numbers may be
 * decimal or 0x-hex followed by certutil's explanation ("20 -- Issued", "0x0 (WIN32: 0)"); dates
 * are US "M/D/YYYY h:mm[:ss] [AM|PM]" or ISO 8601, read as UTC (certutil's -gmt option writes
 * them so); binary cells are base64 with or without PEM armour lines.
 *
 * Every record is bounded (CRS_CATCHUP_CSV_LINE_MAX bytes, CRS_CATCHUP_CSV_COLUMNS_MAX cells), as
 * is the number of records; a malformed record is reported with its line number and skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catchup_int.h"
#include "certrelay/alloc.h"
#include "certrelay/base64.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "certrelay/timefmt.h"

/* certutil's English display names and the schema column each one is. */
static const struct {
    const char *display;
    const char *schema;
} display_names[] = {
    {"Request ID", "RequestID"},
    {"Request Type", "Request.RequestType"},
    {"Request Disposition", "Request.Disposition"},
    {"Request Disposition Message", "Request.DispositionMessage"},
    {"Request Status Code", "Request.StatusCode"},
    {"Requester Name", "Request.RequesterName"},
    {"Caller Name", "Request.CallerName"},
    {"Request Submission Date", "Request.SubmittedWhen"},
    {"Request Resolution Date", "Request.ResolvedWhen"},
    {"Revocation Date", "Request.RevokedWhen"},
    {"Effective Revocation Date", "Request.RevokedEffectiveWhen"},
    {"Revocation Reason", "Request.RevokedReason"},
    {"Request Attributes", "Request.RequestAttributes"},
    {"Certificate Template", "CertificateTemplate"},
    {"Serial Number", "SerialNumber"},
    {"Certificate Effective Date", "NotBefore"},
    {"Certificate Expiration Date", "NotAfter"},
    {"Binary Certificate", "RawCertificate"},
    {"Issued Distinguished Name", "DistinguishedName"},
    {"Issued Common Name", "CommonName"},
    {"User Principal Name", "UPN"},
    {"Certificate Hash", "CertificateHash"},
    {"Issued Email Address", "EMail"},
    {"Public Key Algorithm", "PublicKeyAlgorithm"},
    {"Public Key Length", "PublicKeyLength"},
};

/* One record split into cells. The cells point into `buf`, NUL-terminated there. */
struct record {
    char *buf;
    size_t len;
    size_t cells[CRS_CATCHUP_CSV_COLUMNS_MAX]; /* offsets into buf */
    size_t ncells;
    uint64_t line;   /* the line the record starts on */
    int toolong;     /* more bytes or cells than the caps: the record is skipped */
    const char *why; /* another reason the record is malformed, NULL when it is not */
};

/* ---------------------------------------------------------------------------------------------
 * Records (RFC 4180)
 * ------------------------------------------------------------------------------------------- */

static int rec_put(struct record *r, char c)
{
    if (r->len + 1 >= CRS_CATCHUP_CSV_LINE_MAX) {
        r->toolong = 1;
        return 0;
    }
    r->buf[r->len++] = c;
    return 0;
}

static void rec_end_cell(struct record *r)
{
    if (r->toolong || r->len >= CRS_CATCHUP_CSV_LINE_MAX) {
        r->toolong = 1;
        return;
    }
    r->buf[r->len++] = '\0';
    if (r->ncells + 1 > CRS_CATCHUP_CSV_COLUMNS_MAX) {
        r->toolong = 1;
        return;
    }
    r->cells[++r->ncells] = r->len; /* the next cell starts here */
}

/*
 * Reads one record. Returns 1 with a record, 0 at the end of the file, CRS_EIO on a read error.
 * A record past the caps is consumed to its end (quotes still tracked) and flagged, so the
 * reader resynchronizes on the next record.
 */
static int rec_read(FILE *f, struct record *r, uint64_t *line)
{
    int c;
    int quoted = 0, after_quote = 0, any = 0;

    r->len = 0;
    r->ncells = 0;
    r->cells[0] = 0;
    r->toolong = 0;
    r->why = NULL;
    r->line = *line;

    for (;;) {
        c = getc(f);
        if (c == EOF) {
            if (ferror(f))
                return CRS_EIO;
            if (!any)
                return 0;
            if (quoted)
                r->why = "a quoted cell is not closed before the end of the file";
            rec_end_cell(r);
            return 1;
        }
        any = 1;
        if (c == '\n')
            (*line)++;
        if (quoted) {
            if (c == '"') {
                int d = getc(f);
                if (d == '"') {
                    rec_put(r, '"');
                    continue;
                }
                if (d != EOF)
                    ungetc(d, f);
                quoted = 0;
                after_quote = 1;
                continue;
            }
            rec_put(r, (char)c);
            continue;
        }
        if (c == '\r')
            continue;
        if (c == '\n') {
            rec_end_cell(r);
            return 1;
        }
        if (c == ',') {
            rec_end_cell(r);
            after_quote = 0;
            continue;
        }
        if (c == '"') {
            if (after_quote || r->len > r->cells[r->ncells]) {
                if (r->why == NULL)
                    r->why = "a quote inside an unquoted cell";
            } else {
                quoted = 1;
            }
            continue;
        }
        if (after_quote) {
            if (c != ' ' && c != '\t' && r->why == NULL)
                r->why = "text after the closing quote of a cell";
            continue;
        }
        if (c == '\0' && r->why == NULL)
            r->why = "a NUL byte";
        rec_put(r, (char)c);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------------- */

/* A number as certutil writes it: decimal or 0x-hex, then anything after a blank or "(".
 * HRESULTs written as unsigned hex (0x80094012) become the negative 32-bit value certsrv holds. */
static int parse_long(const char *s, int64_t *out)
{
    char *end;
    int neg = 0, hex = 0;
    uint64_t v;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        hex = 1;
        s += 2;
    }
    if (!(s[0] >= '0' && s[0] <= '9') &&
        !(hex && ((s[0] >= 'a' && s[0] <= 'f') || (s[0] >= 'A' && s[0] <= 'F'))))
        return CRS_EINVAL;
    errno = 0;
    v = strtoull(s, &end, hex ? 16 : 10);
    if (errno != 0 || v > (uint64_t)INT64_MAX)
        return CRS_ERANGE;
    if (*end != '\0' && *end != ' ' && *end != '\t' && *end != '(')
        return CRS_EINVAL;
    if (hex && !neg && v > 0x7fffffffu && v <= 0xffffffffu) {
        *out = (int64_t)(int32_t)(uint32_t)v;
        return 0;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* Reads an unsigned decimal of at most `max` digits; advances *p. */
static int take_uint(const char **p, unsigned max, unsigned *out)
{
    unsigned v = 0, n = 0;
    while (**p >= '0' && **p <= '9' && n < max) {
        v = v * 10 + (unsigned)(**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0)
        return CRS_EINVAL;
    *out = v;
    return 0;
}

/* certutil's US format "12/3/2026 10:15 AM" (seconds and AM/PM optional), ISO 8601
 * "2026-12-03 10:15[:07]" or RFC 3339 with an offset. Times without an offset are UTC. */
static int parse_date(const char *s, int64_t *out)
{
    unsigned y, mo, d, h = 0, mi = 0, sec = 0;
    const char *p = s;

    while (crs_ascii_isspace((unsigned char)*p))
        p++;
    if (crs_time_parse_rfc3339(p, out) == 0)
        return 0;
    if (take_uint(&p, 4, &y) != 0)
        return CRS_EINVAL;
    if (*p == '-') {
        p++;
        if (take_uint(&p, 2, &mo) != 0 || *p++ != '-' || take_uint(&p, 2, &d) != 0)
            return CRS_EINVAL;
    } else if (*p == '/') {
        mo = y;
        p++;
        if (take_uint(&p, 2, &d) != 0 || *p++ != '/' || take_uint(&p, 4, &y) != 0)
            return CRS_EINVAL;
    } else {
        return CRS_EINVAL;
    }
    if (crs_ascii_isspace((unsigned char)*p) || *p == 'T') {
        while (crs_ascii_isspace((unsigned char)*p) || *p == 'T')
            p++;
        if (take_uint(&p, 2, &h) != 0 || *p++ != ':' || take_uint(&p, 2, &mi) != 0)
            return CRS_EINVAL;
        if (*p == ':') {
            p++;
            if (take_uint(&p, 2, &sec) != 0)
                return CRS_EINVAL;
        }
        while (crs_ascii_isspace((unsigned char)*p))
            p++;
        if (crs_ascii_ncasecmp(p, "AM", 2) == 0 || crs_ascii_ncasecmp(p, "PM", 2) == 0) {
            if (h < 1 || h > 12)
                return CRS_EINVAL;
            h = (h % 12) + ((p[0] == 'P' || p[0] == 'p') ? 12 : 0);
            p += 2;
        }
        while (crs_ascii_isspace((unsigned char)*p))
            p++;
        if (*p == 'Z')
            p++;
    }
    if (*p != '\0' || y < 1601 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return CRS_EINVAL;
    int64_t days = crs_days_from_civil(y, mo, d);
    *out = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000;
    return 0;
}

/* Base64 of a certificate, with or without "-----BEGIN/END ...-----" lines; the armour lines are
 * blanked in place (the cell is ours) and the rest decoded. */
static int parse_binary(char *s, uint8_t **out, size_t *outlen)
{
    char *p;
    while ((p = strstr(s, "-----")) != NULL) {
        char *q = strstr(p + 5, "-----");
        if (q == NULL)
            return CRS_EINVAL;
        memset(p, ' ', (size_t)(q + 5 - p));
    }
    return crs_base64_decode(s, out, outlen);
}

/* ---------------------------------------------------------------------------------------------
 * The reader
 * ------------------------------------------------------------------------------------------- */

/* The schema column of a header cell, or NULL for a column the row model ignores. */
static const char *header_column(const char *cell)
{
    size_t n = strlen(cell);
    const char *t = crs_ascii_trim(cell, &n);
    char name[128];

    if (n == 0 || n >= sizeof(name))
        return NULL;
    memcpy(name, t, n);
    name[n] = '\0';
    for (size_t i = 0; i < sizeof(display_names) / sizeof(display_names[0]); i++)
        if (crs_ascii_casecmp(name, display_names[i].display) == 0)
            return display_names[i].schema;
    if (catchup_column_type(name) == 0)
        return NULL;
    /* A schema name: the row model looks it up again, so return the table's spelling. */
    for (size_t i = 0; i < sizeof(display_names) / sizeof(display_names[0]); i++)
        if (catchup_column_type(display_names[i].schema) != 0 &&
            crs_ascii_casecmp(name, display_names[i].schema) == 0)
            return display_names[i].schema;
    for (size_t i = 0; i < sizeof(display_names) / sizeof(display_names[0]); i++) {
        /* "Disposition" or "RequestID" without the prefix: match on the suffix. */
        const char *s = display_names[i].schema;
        if (crs_ascii_ncasecmp(s, "Request.", 8) == 0 && crs_ascii_casecmp(name, s + 8) == 0)
            return s;
    }
    return NULL;
}

/* Fills the row from one record; a sentence in why on failure. */
static int fill_row(struct crs_catchup_row *row, struct record *r, const char **cols, size_t ncols,
                    char *why, size_t whylen)
{
    int rc = 0;

    for (size_t i = 0; i < ncols && i < r->ncells; i++) {
        if (cols[i] == NULL)
            continue;
        char *cell = r->buf + r->cells[i];
        size_t n = strlen(cell);
        const char *t = crs_ascii_trim(cell, &n);
        if (n == 0 || (n == 5 && memcmp(t, "EMPTY", 5) == 0))
            continue;
        int type = catchup_column_type(cols[i]);
        int64_t v;
        switch (type) {
        case CATCHUP_LONG:
            rc = parse_long(t, &v);
            if (rc == 0)
                rc = crs_catchup_row_set_long(row, cols[i], v);
            else
                snprintf(why, whylen, "column %s: not a number", cols[i]);
            break;
        case CATCHUP_DATE:
            rc = parse_date(t, &v);
            if (rc == 0)
                rc = crs_catchup_row_set_date(row, cols[i], v);
            else
                snprintf(why, whylen, "column %s: not a date", cols[i]);
            break;
        case CATCHUP_BINARY: {
            uint8_t *b = NULL;
            size_t bl = 0;
            rc = parse_binary(cell, &b, &bl);
            if (rc == 0)
                rc = crs_catchup_row_set_binary(row, cols[i], b, bl);
            else if (rc == CRS_EINVAL)
                snprintf(why, whylen, "column %s: not base64", cols[i]);
            crs_free(b);
            break;
        }
        case CATCHUP_STRING: {
            /* The trimmed text: certutil pads nothing, but hand edits do. */
            char save = t[n];
            ((char *)t)[n] = '\0';
            rc = crs_catchup_row_set_string(row, cols[i], t);
            ((char *)t)[n] = save;
            break;
        }
        default:
            break;
        }
        if (rc == CRS_ENOMEM)
            return rc;
        if (rc != 0) {
            if (why[0] == '\0')
                snprintf(why, whylen, "%s", crs_catchup_row_error(row));
            return rc;
        }
    }
    if (crs_catchup_row_request_id(row) < 0) {
        snprintf(why, whylen, "no request id");
        return CRS_EINVAL;
    }
    return 0;
}

int crs_catchup_read_csv(FILE *f, const struct crs_catchup_filter *flt, crs_catchup_row_cb cb,
                         void *ctx, char *err, size_t errlen)
{
    return crs_catchup_read_csv2(f, flt, cb, NULL, ctx, NULL, err, errlen);
}

int crs_catchup_read_csv2(FILE *f, const struct crs_catchup_filter *flt, crs_catchup_row_cb cb,
                          crs_catchup_bad_cb bad_cb, void *ctx, struct crs_catchup_csv_stats *stats,
                          char *err, size_t errlen)
{
    struct record *r = NULL;
    struct crs_catchup_row *row = NULL;
    const char **cols = NULL;
    size_t ncols = 0;
    struct crs_catchup_csv_stats st = {0};
    uint64_t line = 1;
    char why[320];
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (f == NULL || cb == NULL)
        return CRS_EINVAL;
    r = crs_calloc(1, sizeof(*r));
    cols = crs_calloc(CRS_CATCHUP_CSV_COLUMNS_MAX, sizeof(*cols));
    if (r == NULL || cols == NULL || (r->buf = crs_malloc(CRS_CATCHUP_CSV_LINE_MAX)) == NULL ||
        crs_catchup_row_new(&row) != 0) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }

    /* A UTF-8 byte order mark (Excel and PowerShell's Out-File write one). */
    int c0 = getc(f);
    if (c0 == 0xef) {
        if (getc(f) != 0xbb || getc(f) != 0xbf) {
            snprintf(err, errlen, "line 1: not a UTF-8 text file");
            rc = CRS_EINVAL;
            goto cleanup;
        }
    } else if (c0 != EOF) {
        ungetc(c0, f);
    }

    /* The header: the first non-empty record. */
    for (;;) {
        rc = rec_read(f, r, &line);
        if (rc < 0) {
            snprintf(err, errlen, "line %llu: read error", (unsigned long long)line);
            goto cleanup;
        }
        if (rc == 0) {
            snprintf(err, errlen, "no header line");
            rc = CRS_EINVAL;
            goto cleanup;
        }
        if (r->ncells > 1 || (r->ncells == 1 && r->buf[0] != '\0') || r->toolong)
            break;
    }
    if (r->toolong || r->why != NULL) {
        snprintf(err, errlen, "line %llu: malformed header (%s)", (unsigned long long)r->line,
                 r->toolong ? "too long" : r->why);
        rc = CRS_EINVAL;
        goto cleanup;
    }
    ncols = r->ncells;
    int have_id = 0;
    for (size_t i = 0; i < ncols; i++) {
        cols[i] = header_column(r->buf + r->cells[i]);
        have_id |= cols[i] != NULL && catchup_column_type(cols[i]) == CATCHUP_LONG &&
                   crs_ascii_casecmp(cols[i], "RequestID") == 0;
    }
    if (!have_id) {
        snprintf(err, errlen, "line %llu: the header has no Request ID (RequestID) column",
                 (unsigned long long)r->line);
        rc = CRS_EINVAL;
        goto cleanup;
    }

    for (;;) {
        rc = rec_read(f, r, &line);
        if (rc < 0) {
            snprintf(err, errlen, "line %llu: read error", (unsigned long long)line);
            goto cleanup;
        }
        if (rc == 0)
            break;
        if (r->ncells == 1 && r->buf[0] == '\0' && !r->toolong && r->why == NULL)
            continue; /* a blank line */
        if (st.rows >= CRS_CATCHUP_CSV_ROWS_MAX) {
            snprintf(err, errlen, "more than %u records", CRS_CATCHUP_CSV_ROWS_MAX);
            rc = CRS_ETOOBIG;
            goto cleanup;
        }
        st.rows++;
        why[0] = '\0';
        crs_catchup_row_reset(row);
        if (r->toolong) {
            snprintf(why, sizeof(why), "record longer than %u bytes or %u cells",
                     CRS_CATCHUP_CSV_LINE_MAX, CRS_CATCHUP_CSV_COLUMNS_MAX);
        } else if (r->why != NULL) {
            snprintf(why, sizeof(why), "%s", r->why);
        } else if (r->ncells != ncols) {
            snprintf(why, sizeof(why), "%zu cells, the header has %zu", r->ncells, ncols);
        } else {
            rc = fill_row(row, r, cols, ncols, why, sizeof(why));
            if (rc == CRS_ENOMEM)
                goto cleanup;
            if (rc != 0 && why[0] == '\0')
                snprintf(why, sizeof(why), "%s", crs_strerror(rc));
        }
        if (why[0] != '\0') {
            st.bad++;
            if (bad_cb != NULL)
                bad_cb(ctx, r->line, why);
            continue;
        }
        if (!crs_catchup_filter_match(flt, row))
            continue;
        st.matched++;
        rc = cb(ctx, row);
        if (rc != 0)
            goto cleanup;
    }
    rc = 0;

cleanup:
    if (stats != NULL)
        *stats = st;
    if (r != NULL)
        crs_free(r->buf);
    crs_free(r);
    crs_free(cols);
    crs_catchup_row_free(row);
    return rc;
}
