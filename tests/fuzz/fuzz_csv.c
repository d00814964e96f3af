/*
 * Fuzz target for the `certutil -view csv` reader (catchup/csv.c) and the row → events mapping
 * behind it: any bytes are either read (rows, some skipped as malformed) or refused with a
 * sentence, every row handed out builds events that decode again, and nothing is read outside
 * the input. Built like fuzz_config.c: a libFuzzer target with clang, a corpus replayer
 * everywhere (POSIX: the input is read through fmemopen).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "certrelay/catchup.h"
#include "certrelay/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX (512u * 1024u)

static int on_row(void *ctx, const struct crs_catchup_row *row)
{
    struct crs_catchup_events evs;
    int rc = crs_catchup_row_events(row, "FUZZ\\Fuzz CA", 0, &evs);

    if (rc == 0) {
        for (size_t i = 0; i < evs.count; i++) {
            Certrelay__V1__Event *ev = NULL;
            if (crs_event_unpack(evs.ev[i].packed, evs.ev[i].packed_len, &ev) != 0)
                abort();
            crs_event_free(ev);
        }
        crs_catchup_events_free(&evs);
    } else if (rc != CRS_EINVAL) {
        abort();
    }
    return 0;
}

static void on_bad(void *ctx, uint64_t line, const char *why)
{
    if (why == NULL || why[0] == '\0' || line == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crs_catchup_csv_stats st;
    char err[256];
    FILE *f;
    int rc;

    if (size > FUZZ_MAX || size == 0)
        return 0;
    f = fmemopen((void *)data, size, "rb");
    if (f == NULL)
        return 0;
    rc = crs_catchup_read_csv2(f, NULL, on_row, on_bad, NULL, &st, err, sizeof(err));
    fclose(f);
    if (rc != 0 && err[0] == '\0')
        abort();
    if (st.matched + st.bad > st.rows)
        abort();
    return 0;
}
