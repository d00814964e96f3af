/*
 * The dedup key of an event: (CA, request id, kind, disposition minute).
 *
 * Live events and caught-up ones are keyed alike so that the broker recognizes an event it already
 * holds whichever path brought it first. certutil's CSV export writes times at minute precision,
 * so the key keeps whole minutes; the CA config string is compared without ASCII case, as Windows
 * compares CA names.
 */
#include <string.h>

#include "certrelay/catchup.h"
#include "certrelay/error.h"

int64_t crs_catchup_minute(int64_t unix_ms)
{
    int64_t m = unix_ms / 60000;
    if (unix_ms % 60000 != 0 && unix_ms < 0)
        m--;
    return m;
}

/*
 * certsrv gives the exit module the CA's name alone (Initialize's strConfig), while a catch-up run
 * names the CA by its configuration string "HOST\CA Name" (what OpenConnection needs): the key
 * keeps the name, the part after the last backslash, so both meet.
 */
int crs_catchup_ca_key(const char *config, char *out, size_t outlen)
{
    const char *name;
    size_t n;

    if (config == NULL || out == NULL || outlen == 0)
        return CRS_EINVAL;
    out[0] = '\0';
    name = strrchr(config, '\\');
    name = name != NULL ? name + 1 : config;
    n = strlen(name);
    if (n == 0 || n > CRS_CATCHUP_CA_MAX || n >= outlen)
        return CRS_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    out[n] = '\0';
    return 0;
}

int crs_catchup_event_key(const Certrelay__V1__Event *ev, struct crs_catchup_key *key)
{
    const Certrelay__V1__RequestInfo *req;
    protobuf_c_boolean has_when = 0;
    int64_t when = 0;

    if (ev == NULL || key == NULL)
        return CRS_EINVAL;
    memset(key, 0, sizeof(*key));
    req = ev->request;
    if (!ev->has_kind || !((uint32_t)ev->kind & CRS_CATCHUP_KINDS) || req == NULL ||
        !req->has_request_id || ev->ca == NULL || ev->ca->config == NULL ||
        ev->ca->config[0] == '\0')
        return CRS_ENOENT;
    if (crs_catchup_ca_key(ev->ca->config, key->ca, sizeof(key->ca)) != 0)
        return CRS_ENOENT;
    key->request_id = req->request_id;
    key->kind = (uint32_t)ev->kind;
    switch (key->kind) {
    case CRS_EVENT_PENDING:
        has_when = req->has_submitted_when_ms;
        when = req->submitted_when_ms;
        break;
    case CRS_EVENT_REVOKED:
        has_when = req->has_revoked_when_ms;
        when = req->revoked_when_ms;
        break;
    default:
        has_when = req->has_resolved_when_ms;
        when = req->resolved_when_ms;
        break;
    }
    key->minute = has_when ? crs_catchup_minute(when) : -1;
    return 0;
}
