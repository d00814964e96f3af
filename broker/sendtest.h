/*
 * The test delivery behind `certrelay send-test` (see sendtest.c).
 */
#ifndef CERTRELAY_BROKER_SENDTEST_H
#define CERTRELAY_BROKER_SENDTEST_H

#include <jansson.h>
#include "sinks/sink.h"

struct crs_dispatcher;

/* status 0 when delivered, else CRS_EIO; result (owned by the callee) says what happened. */
typedef void (*crs_sendtest_cb)(void *arg, int status, json_t *result);

/* Starts one test delivery through sink; cb is called once, later, unless this fails (err). */
int crs_sendtest_start(struct crs_sink *sink, struct crs_dispatcher *disp, const char *ca_host,
                       crs_sendtest_cb cb, void *arg, char *err, size_t errlen);

#endif
