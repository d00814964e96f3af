/* Skeleton: filled in by the following commits. */
#include "certrelay/catchup.h"
#include "certrelay/error.h"

int crs_catchup_event_key(const Certrelay__V1__Event *ev, struct crs_catchup_key *key)
{
    return CRS_ENOTSUP;
}
int64_t crs_catchup_minute(int64_t unix_ms)
{
    return unix_ms / 60000;
}
