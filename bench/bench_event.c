/* The benchmarks' events (see bench_event.h). */
#include "bench_event.h"

#include <stdio.h>
#include <string.h>

/* Stands in for a DER certificate: the sinks never parse it, they copy it. */
static uint8_t fake_der[1200];

static void bench_event_base(struct bench_event *b, long i)
{
    size_t k;

    if (fake_der[1] == 0) {
        for (k = 0; k < sizeof(fake_der); k++)
            fake_der[k] = (uint8_t)(k * 7);
    }
    memset(b, 0, sizeof(*b));
    b->ev = (Certrelay__V1__Event)CERTRELAY__V1__EVENT__INIT;
    b->ca = (Certrelay__V1__CaInfo)CERTRELAY__V1__CA_INFO__INIT;
    crs_uuid7(b->id);
    b->ev.event_id = b->id;
    b->ev.has_capture_time_ms = 1;
    b->ev.capture_time_ms = 1751364000000LL + i;
    b->ev.ca = &b->ca;
    b->ca.config = "ca01.corp.example.com\\Corp Issuing CA";
    b->ca.sanitized_name = "Corp Issuing CA";
    b->ca.host = "ca01.corp.example.com";
}

void bench_event_cert(struct bench_event *b, long i)
{
    bench_event_base(b, i);
    b->req = (Certrelay__V1__RequestInfo)CERTRELAY__V1__REQUEST_INFO__INIT;
    b->cert = (Certrelay__V1__CertificateInfo)CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    snprintf(b->cn, sizeof(b->cn), "host%03ld.corp.example.com", i % 1000);
    b->ev.has_kind = 1;
    b->ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_ISSUED;
    b->ev.request = &b->req;
    b->req.has_request_id = 1;
    b->req.request_id = 1000 + i;
    b->req.requester_name = "CORP\\alice";
    b->req.certificate_template = "WebServer";
    b->ev.certificate = &b->cert;
    b->cert.serial_number = "61000000a1b2c3d4e5f6";
    b->cert.common_name = b->cn;
    b->cert.distinguished_name = "CN=host.corp.example.com, OU=Web, O=Example Corp, C=US";
    b->cert.has_raw_certificate = 1;
    b->cert.raw_certificate.data = fake_der;
    b->cert.raw_certificate.len = sizeof(fake_der);
    b->cert.has_not_before_ms = 1;
    b->cert.not_before_ms = 1751364000000LL;
    b->cert.has_not_after_ms = 1;
    b->cert.not_after_ms = 1782900000000LL;
}

void bench_event_crl(struct bench_event *b, long i, const uint8_t *crl, size_t crl_len)
{
    bench_event_base(b, i);
    b->crl = (Certrelay__V1__CrlInfo)CERTRELAY__V1__CRL_INFO__INIT;
    b->ev.has_kind = 1;
    b->ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_CRL_ISSUED;
    b->crl.has_ca_cert_index = 1;
    b->crl.ca_cert_index = 0;
    b->crl.has_raw_crl = 1;
    b->crl.raw_crl.data = (uint8_t *)crl;
    b->crl.raw_crl.len = crl_len;
    b->crls[0] = &b->crl;
    b->ev.n_crls = 1;
    b->ev.crls = b->crls;
}

int bench_sink_open(const char *ini, const char *type, uv_loop_t *loop, struct crs_config **cfg,
                    struct crs_sink *sink)
{
    char err[CRS_CONFIG_ERRLEN];

    if (crs_config_load_string("bench.ini", ini, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uv_loop_init(loop);
    memset(sink, 0, sizeof(*sink));
    sink->cfg = &(*cfg)->sinks[0];
    sink->driver = crs_sink_driver_find(type);
    sink->loop = loop;
    if (sink->driver == NULL || sink->driver->open(sink) != 0) {
        fprintf(stderr, "cannot open the %s driver\n", type);
        return 1;
    }
    return 0;
}
