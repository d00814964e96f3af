/*
 * The events the benchmarks deliver: a certificate-issued event shaped like the ones certsrv
 * reports (a 1,200-byte certificate, the usual request and CA properties), or a CRL-issued event
 * carrying a base CRL of a chosen size. Shared by webhook_bench, file_drop_bench and drain_fill so
 * that every figure is taken with the same payload.
 */
#ifndef CERTRELAY_BENCH_EVENT_H
#define CERTRELAY_BENCH_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "certrelay/uuid.h"
#include "certrelay.pb-c.h"
#include "config/config.h"
#include "sinks/sink.h"

struct bench_event {
    Certrelay__V1__Event ev;
    Certrelay__V1__CaInfo ca;
    Certrelay__V1__RequestInfo req;
    Certrelay__V1__CertificateInfo cert;
    Certrelay__V1__CrlInfo crl;
    Certrelay__V1__CrlInfo *crls[1];
    char id[CRS_UUID_STRLEN + 1];
    char cn[64];
};

/* A certificate-issued event numbered i (request id 1000 + i) with a fresh UUIDv7 id. */
void bench_event_cert(struct bench_event *b, long i);
/* A CRL-issued event whose base CRL is crl_len bytes (kept by the caller, not copied). */
void bench_event_crl(struct bench_event *b, long i, const uint8_t *crl, size_t crl_len);

/*
 * Loads the configuration text ini, whose first sink is the one measured, and opens that sink's
 * driver of type `type` on loop, as the dispatcher would. 0, or 1 after saying why on stderr.
 */
int bench_sink_open(const char *ini, const char *type, uv_loop_t *loop, struct crs_config **cfg,
                    struct crs_sink *sink);

#endif
