/* Skeleton: filled in by the following commits. */
#include "certrelay/catchup.h"
#include "certrelay/error.h"

struct crs_catchup_row {
    int64_t request_id;
};

int crs_catchup_row_new(struct crs_catchup_row **out)
{
    *out = NULL;
    return CRS_ENOTSUP;
}
void crs_catchup_row_free(struct crs_catchup_row *row)
{
}
void crs_catchup_row_reset(struct crs_catchup_row *row)
{
}
int crs_catchup_row_set_long(struct crs_catchup_row *row, const char *column, int64_t v)
{
    return CRS_ENOTSUP;
}
int crs_catchup_row_set_date(struct crs_catchup_row *row, const char *column, int64_t unix_ms)
{
    return CRS_ENOTSUP;
}
int crs_catchup_row_set_string(struct crs_catchup_row *row, const char *column, const char *utf8)
{
    return CRS_ENOTSUP;
}
int crs_catchup_row_set_binary(struct crs_catchup_row *row, const char *column, const uint8_t *p,
                               size_t n)
{
    return CRS_ENOTSUP;
}
const char *crs_catchup_row_error(const struct crs_catchup_row *row)
{
    return "";
}
int64_t crs_catchup_row_request_id(const struct crs_catchup_row *row)
{
    return -1;
}
int crs_catchup_row_events(const struct crs_catchup_row *row, const char *ca_config,
                           uint32_t kind_mask, struct crs_catchup_events *out)
{
    return CRS_ENOTSUP;
}
void crs_catchup_events_free(struct crs_catchup_events *evs)
{
}
int crs_catchup_filter_match(const struct crs_catchup_filter *flt,
                             const struct crs_catchup_row *row)
{
    return 0;
}
