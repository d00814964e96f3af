/* Framing: round trips, incremental feeding, and every way a peer can send a bad frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/uuid.h"

static Certrelay__V1__Event *make_event(size_t der_len)
{
    static char id[CRS_UUID_STRLEN + 1];
    static uint8_t der[70000];
    static Certrelay__V1__CertificateInfo cert = CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    static Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    size_t i;

    crs_uuid7(id);
    for (i = 0; i < sizeof(der); i++)
        der[i] = (uint8_t)(i * 7);
    cert.has_raw_certificate = 1;
    cert.raw_certificate.data = der;
    cert.raw_certificate.len = der_len;
    cert.serial_number = "1a2b";
    ev.event_id = id;
    ev.has_kind = 1;
    ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_ISSUED;
    ev.certificate = &cert;
    return &ev;
}

/* Packs an event, frames it, and reads it back through the reader fed `step` bytes at a time. */
static void round_trip(size_t der_len, size_t step)
{
    Certrelay__V1__Event *ev = make_event(der_len);
    Certrelay__V1__Envelope *env = NULL;
    struct crs_frame_reader r;
    const uint8_t *payload;
    uint8_t *packed = NULL, *frame = NULL;
    size_t plen, flen, off, len;
    int got = 0;

    CHECK_EQ_INT(crs_event_pack(ev, &packed, &plen), 0);
    CHECK_EQ_INT(crs_frame_event_packed(packed, plen, &frame, &flen), 0);
    crs_frame_reader_init(&r, CRS_FRAME_MAX);
    for (off = 0; off < flen; off += step) {
        size_t n = flen - off < step ? flen - off : step;
        CHECK_EQ_INT(crs_frame_reader_feed(&r, frame + off, n), 0);
        while (crs_frame_reader_next(&r, &payload, &len) == 1) {
            got++;
            CHECK_EQ_INT(crs_envelope_decode(payload, len, &env), 0);
            CHECK(env != NULL && env->body_case == CERTRELAY__V1__ENVELOPE__BODY_EVENT);
            if (env != NULL && env->event != NULL) {
                CHECK_EQ_STR(env->event->event_id, ev->event_id);
                CHECK_EQ_INT(env->event->certificate->raw_certificate.len, der_len);
                CHECK(der_len == 0 || memcmp(env->event->certificate->raw_certificate.data,
                                             ev->certificate->raw_certificate.data, der_len) == 0);
            }
            crs_envelope_free(env);
            env = NULL;
        }
    }
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_INT(crs_frame_reader_pending(&r), 0);
    crs_frame_reader_free(&r);
    crs_free(packed);
    crs_free(frame);
}

static void test_many_frames_in_one_feed(void)
{
    struct crs_frame_reader r;
    uint8_t *a = NULL, *b = NULL, *c = NULL, *all;
    size_t al, bl, cl, len;
    const uint8_t *payload;
    Certrelay__V1__Envelope *env;
    int n = 0;

    CHECK_EQ_INT(crs_frame_hello(1, "0.1.0", "CA\\Test", &a, &al), 0);
    CHECK_EQ_INT(crs_frame_ack("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011", &b, &bl), 0);
    CHECK_EQ_INT(crs_frame_nack("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011", "disk full", &c, &cl), 0);
    all = malloc(al + bl + cl);
    memcpy(all, a, al);
    memcpy(all + al, b, bl);
    memcpy(all + al + bl, c, cl);
    crs_frame_reader_init(&r, 0);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, all, al + bl + cl), 0);
    while (crs_frame_reader_next(&r, &payload, &len) == 1) {
        CHECK_EQ_INT(crs_envelope_decode(payload, len, &env), 0);
        if (n == 0) {
            CHECK(env->body_case == CERTRELAY__V1__ENVELOPE__BODY_HELLO);
            CHECK_EQ_INT(env->hello->protocol_version, 1);
            CHECK_EQ_STR(env->hello->ca_config, "CA\\Test");
        } else if (n == 1) {
            CHECK(env->body_case == CERTRELAY__V1__ENVELOPE__BODY_ACK);
        } else {
            CHECK(env->body_case == CERTRELAY__V1__ENVELOPE__BODY_NACK);
            CHECK_EQ_STR(env->nack->reason, "disk full");
        }
        crs_envelope_free(env);
        n++;
    }
    CHECK_EQ_INT(n, 3);
    crs_frame_reader_free(&r);
    crs_free(a);
    crs_free(b);
    crs_free(c);
    free(all);
}

static void test_oversized(void)
{
    struct crs_frame_reader r;
    uint8_t hdr[4] = {0x04, 0x00, 0x00, 0x01}; /* 64 MiB + 1 */
    const uint8_t *p;
    size_t len;

    crs_frame_reader_init(&r, CRS_FRAME_MAX);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, hdr, 4), CRS_ETOOBIG);
    crs_frame_reader_free(&r);

    /* A lower configured cap is honoured; the header alone is enough to refuse. */
    crs_frame_reader_init(&r, 1024);
    hdr[0] = 0;
    hdr[1] = 0;
    hdr[2] = 0x04;
    hdr[3] = 0x01;
    CHECK_EQ_INT(crs_frame_reader_feed(&r, hdr, 2), 0);
    CHECK_EQ_INT(crs_frame_reader_next(&r, &p, &len), 0);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, hdr + 2, 2), CRS_ETOOBIG);
    CHECK_EQ_INT(crs_frame_reader_next(&r, &p, &len), CRS_ETOOBIG);
    crs_frame_reader_free(&r);

    /* Encoding refuses too: nothing larger than the cap is ever produced. */
    {
        uint8_t *frame = NULL;
        size_t flen = 99;
        CHECK_EQ_INT(crs_frame_event_packed((const uint8_t *)"", CRS_FRAME_MAX, &frame, &flen),
                     CRS_ETOOBIG);
        CHECK(frame == NULL && flen == 0);
    }
}

static void test_zero_length_and_garbage(void)
{
    struct crs_frame_reader r;
    uint8_t zero[4] = {0, 0, 0, 0};
    uint8_t garbage[4 + 6] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t notset[4 + 2] = {0, 0, 0, 2, 0x78, 0x01}; /* unknown field 15 only */
    Certrelay__V1__Envelope *env = (void *)1;
    const uint8_t *p;
    size_t len;

    crs_frame_reader_init(&r, 0);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, zero, 4), CRS_EPROTO);
    crs_frame_reader_free(&r);

    crs_frame_reader_init(&r, 0);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, garbage, sizeof(garbage)), 0);
    CHECK_EQ_INT(crs_frame_reader_next(&r, &p, &len), 1);
    CHECK_EQ_INT(crs_envelope_decode(p, len, &env), CRS_EPROTO);
    CHECK(env == NULL);
    crs_frame_reader_free(&r);

    crs_frame_reader_init(&r, 0);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, notset, sizeof(notset)), 0);
    CHECK_EQ_INT(crs_frame_reader_next(&r, &p, &len), 1);
    CHECK_EQ_INT(crs_envelope_decode(p, len, &env), CRS_EPROTO);
    crs_frame_reader_free(&r);
}

static void test_truncated(void)
{
    struct crs_frame_reader r;
    uint8_t *frame = NULL;
    size_t flen, len;
    const uint8_t *p;

    CHECK_EQ_INT(crs_frame_ack("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011", &frame, &flen), 0);
    crs_frame_reader_init(&r, 0);
    CHECK_EQ_INT(crs_frame_reader_feed(&r, frame, flen - 1), 0);
    CHECK_EQ_INT(crs_frame_reader_next(&r, &p, &len), 0);
    /* The caller sees unread bytes at EOF and reports a truncated frame. */
    CHECK_EQ_INT(crs_frame_reader_pending(&r), flen - 1);
    crs_frame_reader_free(&r);
    crs_free(frame);
}

static void test_alloc_failures(void)
{
    long n;

    for (n = 0; n < 12; n++) {
        struct crs_frame_reader r;
        uint8_t *frame = NULL;
        size_t flen = 0, len;
        const uint8_t *p;
        Certrelay__V1__Envelope *env = NULL;
        int rc;

        crs_alloc_fail_after(n);
        rc = crs_frame_hello(1, "v", "ca", &frame, &flen);
        if (rc == 0) {
            crs_frame_reader_init(&r, 0);
            rc = crs_frame_reader_feed(&r, frame, flen);
            if (rc == 0 && crs_frame_reader_next(&r, &p, &len) == 1)
                rc = crs_envelope_decode(p, len, &env);
            crs_envelope_free(env);
            crs_frame_reader_free(&r);
        }
        crs_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == CRS_ENOMEM || rc == CRS_EPROTO);
        crs_free(frame);
    }
}

/* The broker serves the current protocol version and the previous one, nothing else. */
static void test_protocol_versions(void)
{
    CHECK(crs_protocol_accepts(CRS_PROTOCOL_VERSION, CRS_PROTOCOL_VERSION));
    CHECK(!crs_protocol_accepts(CRS_PROTOCOL_VERSION, CRS_PROTOCOL_VERSION + 1));
    CHECK(!crs_protocol_accepts(CRS_PROTOCOL_VERSION, 0));
    /* As it will be once the protocol is at version 3: 2 and 3, not 1 or 4. */
    CHECK(crs_protocol_accepts(3, 3));
    CHECK(crs_protocol_accepts(3, 2));
    CHECK(!crs_protocol_accepts(3, 1));
    CHECK(!crs_protocol_accepts(3, 4));
    CHECK(!crs_protocol_accepts(1, 0));
    CHECK(!crs_protocol_accepts(UINT32_MAX, 0));
}

int main(void)
{
    round_trip(0, 1);
    round_trip(1200, 1);
    round_trip(1200, 7);
    round_trip(65000, 4096);
    round_trip(65000, 1 << 20);
    test_many_frames_in_one_feed();
    test_oversized();
    test_zero_length_and_garbage();
    test_truncated();
    test_alloc_failures();
    test_protocol_versions();
    return CHECK_DONE();
}
