/*
 * The ICertView2 row source. The catchup-win branch implements it; this placeholder lets the
 * portable half build on Windows until then.
 */
#include "certrelay/catchup.h"
#include "certrelay/error.h"

int crs_catchup_read_view(const char *ca_config, const struct crs_catchup_filter *flt,
                          crs_catchup_row_cb cb, void *ctx, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "reading the CA database is not implemented in this build");
    return CRS_ENOTSUP;
}
