/*
 * The broker's pure decisions: the retry delay curve (exponential, capped, equal jitter,
 * Retry-After) and routing (events mask, templates filter by name or OID, case-insensitive).
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "certrelay/event.h"
#include "dispatch.h"
#include "queue.h"
#include "route.h"

static void test_backoff(void)
{
    struct crs_sink_config sc;
    uint32_t rnd;

    memset(&sc, 0, sizeof(sc));
    sc.backoff_initial_ms = 1000;
    sc.backoff_max_ms = 600000;

    /* Equal jitter: delay/2 .. delay, for the lowest and the highest random value. */
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 1, -1, 0), 500);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 1, -1, 500), 1000);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 2, -1, 0), 1000);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 3, -1, 0), 2000);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 10, -1, 0), 256000);
    /* Capped by backoff_max, however many attempts (no overflow at absurd counts). */
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 11, -1, 0), 300000);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 4000000000u, -1, 0), 300000);
    for (rnd = 0; rnd < 100000; rnd += 7919) {
        int64_t d = crs_backoff_delay_ms(&sc, 40, -1, rnd * 2654435761u);
        CHECK(d >= 300000 && d <= 600000);
    }
    /* A receiver's Retry-After replaces the curve, capped by backoff_max; 0 is honoured. */
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 1, 42000, 12345), 42000);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 1, 0, 12345), 0);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 1, 86400000, 12345), 600000);

    /* The values the retry integration test configures. */
    sc.backoff_initial_ms = 50;
    sc.backoff_max_ms = 200;
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 1, -1, 0), 25);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 3, -1, 100), 200);
    CHECK_EQ_INT(crs_backoff_delay_ms(&sc, 5, -1, 0), 100);
}

static void test_routing(void)
{
    Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    Certrelay__V1__RequestInfo req = CERTRELAY__V1__REQUEST_INFO__INIT;
    Certrelay__V1__CertificateInfo cert = CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    struct crs_sink_config sc;
    char *tpls[] = {"WebServer", "1.3.6.1.4.1.311.21.8.1.2", NULL};

    memset(&sc, 0, sizeof(sc));
    sc.events = CRS_EVENT_ALL;
    ev.has_kind = 1;
    ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_ISSUED;

    CHECK(crs_sink_matches(&sc, &ev));
    sc.events = CRS_EVENT_REVOKED | CRS_EVENT_CRL_ISSUED;
    CHECK(!crs_sink_matches(&sc, &ev));
    sc.events = CRS_EVENT_ISSUED;
    CHECK(crs_sink_matches(&sc, &ev));

    /* A templates filter: an event without any template does not match. */
    sc.templates = tpls;
    sc.ntemplates = 2;
    CHECK(!crs_sink_matches(&sc, &ev));
    ev.certificate = &cert;
    cert.certificate_template = "webserver";
    CHECK(crs_sink_matches(&sc, &ev));
    cert.certificate_template = "User";
    CHECK(!crs_sink_matches(&sc, &ev));
    /* The request's template (an OID for v2+ templates) counts too. */
    ev.request = &req;
    req.certificate_template = "1.3.6.1.4.1.311.21.8.1.2";
    CHECK(crs_sink_matches(&sc, &ev));
    req.certificate_template = "1.3.6.1.4.1.311.21.8.1.20";
    CHECK(!crs_sink_matches(&sc, &ev));

    /* An event of an unknown kind never matches. */
    sc.templates = NULL;
    sc.ntemplates = 0;
    ev.has_kind = 0;
    CHECK(!crs_sink_matches(&sc, &ev));
    CHECK(!crs_sink_matches(NULL, &ev));
}

int main(void)
{
    test_backoff();
    test_routing();
    return CHECK_DONE();
}
