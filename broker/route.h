/*
 * Routing: which sinks take an event. One predicate, used where events are stored (queue.c),
 * replayed (queue_admin.c) and raised by the broker itself (expiry_store.c), so the three agree.
 */
#ifndef CERTRELAY_BROKER_ROUTE_H
#define CERTRELAY_BROKER_ROUTE_H

#include "certrelay.pb-c.h"
#include "config/config.h"

/* True when sink configuration sc takes event ev (events mask and templates filter). */
int crs_sink_matches(const struct crs_sink_config *sc, const Certrelay__V1__Event *ev);

#endif
