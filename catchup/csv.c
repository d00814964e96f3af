/* Skeleton: filled in by the following commits. */
#include "certrelay/catchup.h"
#include "certrelay/error.h"

int crs_catchup_read_csv(FILE *f, const struct crs_catchup_filter *flt, crs_catchup_row_cb cb,
                         void *ctx, char *err, size_t errlen)
{
    return crs_catchup_read_csv2(f, flt, cb, NULL, ctx, NULL, err, errlen);
}

int crs_catchup_read_csv2(FILE *f, const struct crs_catchup_filter *flt, crs_catchup_row_cb cb,
                          crs_catchup_bad_cb bad_cb, void *ctx, struct crs_catchup_csv_stats *stats,
                          char *err, size_t errlen)
{
    return CRS_ENOTSUP;
}
