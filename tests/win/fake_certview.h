/*
 * A fake CCertView for the Wine tests (fake_certview.c): ICertView2, IEnumCERTVIEWROW and
 * IEnumCERTVIEWCOLUMN over a table of rows, served through CoRegisterClassObject so the catch-up
 * reader's ordinary CoCreateInstance(CLSID_CCertView) gets it. It behaves like certsrv's view where
 * the reader depends on it (schema column indexes, ANDed restrictions on a column's value, EMPTY
 * columns as VT_EMPTY and never matching a restriction, CV_OUT_BINARY for binary columns, S_FALSE
 * at the end of each enumeration, OpenView once per view) and records what it was asked.
 */
#ifndef CERTRELAY_TESTS_WIN_FAKE_CERTVIEW_H
#define CERTRELAY_TESTS_WIN_FAKE_CERTVIEW_H

#include "certview_guids.h"

#define FCV_MAX_CELLS        32
#define FCV_MAX_RESTRICTIONS 64
#define FCV_MAX_RESULTS      256

/* One value of a row; type 0 is EMPTY (the column is absent). */
struct fcv_cell {
    const WCHAR *name; /* a schema name, e.g. L"Request.ResolvedWhen" */
    LONG type;         /* PROPTYPE_* */
    LONG l;
    double date; /* OLE date */
    const WCHAR *str;
    const BYTE *bin;
    UINT binlen;
};

struct fcv_row {
    struct fcv_cell cells[FCV_MAX_CELLS];
    int ncells;
};

/* What the reader asked, over every view it opened. */
struct fcv_restriction {
    WCHAR column[64];
    LONG op, sort;
    VARTYPE vt;
    LONG l;
    double date;
};

struct fcv_record {
    LONG views_created, views_opened, connections;
    WCHAR config[256];                  /* the last OpenConnection's string */
    LONG result_count;                  /* the last SetResultColumnCount */
    WCHAR results[FCV_MAX_RESULTS][64]; /* every SetResultColumn's column name, all views */
    int nresults;
    struct fcv_restriction restrictions[FCV_MAX_RESTRICTIONS];
    int nrestrictions;
    LONG rows_served;     /* rows a Next produced, all views */
    LONG binary_reads;    /* GetValue on a binary column with CV_OUT_BINARY */
    LONG protocol_errors; /* calls certsrv's view would refuse or that it does not offer */
};

/* The CA the fake database belongs to: OpenConnection accepts "HOST\\<name>" (any host, the
 * name without case) and answers anything else as certsrv answers a CA it cannot find. */
void fcv_set_ca(const WCHAR *name);
/* Makes OpenConnection fail with hr (S_OK: succeed again), as an unreachable CA or a caller
 * without access makes certsrv's fail. */
void fcv_fail_connection(HRESULT hr);
/* The table the next views serve (not copied: keep it alive). */
void fcv_set_table(const struct fcv_row *rows, int nrows);
/*
 * Reads a table in harness.c's --rows format (request_id disposition submitted_ms resolved_ms
 * revoked_ms revoked_reason leaf_file serial sha1 not_before_ms not_after_ms dn cn template live,
 * tab-separated, "-" for EMPTY), the certificate column holding the DER of the leaf fixture of that
 * name in fixtures. The number of rows, or -1 (with a message on stderr).
 */
int fcv_load_rows(const char *path, const char *fixtures, struct fcv_row **out);
/* Adds a cell to a row (names and buffers are not copied). */
struct fcv_cell *fcv_add(struct fcv_row *row, const WCHAR *name, LONG type);
/* Appends a line to path for each OpenConnection ("config STRING") and SetRestriction
 * ("restriction COLUMN OP SORT VALUE", dates as Unix ms). */
void fcv_set_trace(const char *path);
/* The class factory (static), for DllGetClassObject. */
IClassFactory *fcv_factory(void);
/* Registers the class object for CLSID_CCertView in this process. */
HRESULT fcv_register(DWORD *cookie);
/* The record so far, and how many fake objects are still alive (0 once the reader released all). */
const struct fcv_record *fcv_record(void);
void fcv_reset_record(void);
LONG fcv_live_objects(void);

#endif
