/*
 * Routing (route.h).
 */
#include "route.h"

#include <stddef.h>

#include "certrelay/text.h"

int crs_sink_matches(const struct crs_sink_config *sc, const Certrelay__V1__Event *ev)
{
    const char *cert_tpl, *req_tpl;
    uint32_t kind;
    size_t i;

    if (sc == NULL || ev == NULL)
        return 0;
    kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    if ((sc->events & kind) == 0)
        return 0;
    if (sc->templates == NULL || sc->ntemplates == 0)
        return 1;
    /* certsrv reports the template as a name for v1 templates and as an OID for v2+ ones, on the
     * certificate and on the request; a filter entry may be either, so any match counts. */
    cert_tpl = ev->certificate ? ev->certificate->certificate_template : NULL;
    req_tpl = ev->request ? ev->request->certificate_template : NULL;
    for (i = 0; i < sc->ntemplates; i++) {
        if (cert_tpl != NULL && crs_ascii_casecmp(sc->templates[i], cert_tpl) == 0)
            return 1;
        if (req_tpl != NULL && crs_ascii_casecmp(sc->templates[i], req_tpl) == 0)
            return 1;
    }
    return 0;
}
