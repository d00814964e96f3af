/* Event kinds, names, masks, and pack/unpack validation. */
#include <string.h>
#include "check.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"

static void test_names(void)
{
    static const char *const names[] = {"issued",           "pending",    "denied",   "revoked",
                                        "retrieve_pending", "crl_issued", "shutdown", "startup",
                                        "unrevoked",        "imported"};
    uint32_t k, mask = 0;
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        CHECK_EQ_INT(crs_event_from_name(names[i], &k), 0);
        CHECK_EQ_STR(crs_event_name(k), names[i]);
        mask |= k;
    }
    CHECK_EQ_INT(mask, CRS_EVENT_ALL);
    CHECK_EQ_INT(crs_event_from_name("ISSUED", &k), CRS_EINVAL);
    CHECK(crs_event_name(0) == NULL);
    CHECK(crs_event_name(0x3) == NULL);
    CHECK_EQ_INT(CRS_EVENT_UNREVOKED, 0x100);
    CHECK_EQ_INT(CRS_EVENT_IMPORTED, 0x200);
    CHECK_EQ_INT(CERTRELAY__V1__EVENT_KIND__EVENT_KIND_IMPORTED, CRS_EVENT_IMPORTED);
}

static void test_masks(void)
{
    char err[128];
    uint32_t m;

    CHECK_EQ_INT(crs_event_mask_parse("issued, revoked,crl_issued", &m, err, sizeof(err)), 0);
    CHECK_EQ_INT(m, CRS_EVENT_ISSUED | CRS_EVENT_REVOKED | CRS_EVENT_CRL_ISSUED);
    CHECK_EQ_INT(crs_event_mask_parse("all", &m, err, sizeof(err)), 0);
    CHECK_EQ_INT(m, CRS_EVENT_ALL);
    CHECK_EQ_INT(crs_event_mask_parse("issued, revokd", &m, err, sizeof(err)), CRS_EINVAL);
    CHECK(strstr(err, "revokd") != NULL);
    CHECK_EQ_INT(crs_event_mask_parse(" , ", &m, err, sizeof(err)), CRS_EINVAL);
}

static void test_pack_unpack(void)
{
    Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    Certrelay__V1__CertificateInfo cert = CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    Certrelay__V1__Event *back = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char serial[130];

    ev.event_id = "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011";
    ev.has_kind = 1;
    ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_REVOKED;
    cert.serial_number = "61 00 00 00 0A:bc";
    ev.certificate = &cert;
    crs_event_serial_hex(&ev, serial, sizeof(serial));
    CHECK_EQ_STR(serial, "610000000abc");

    CHECK_EQ_INT(crs_event_pack(&ev, &buf, &len), 0);
    CHECK_EQ_INT(crs_event_unpack(buf, len, &back), 0);
    CHECK(back != NULL && back->kind == CERTRELAY__V1__EVENT_KIND__EVENT_KIND_REVOKED);
    crs_event_free(back);
    crs_free(buf);

    /* An event without a valid id, or with an unknown kind, is refused. */
    ev.event_id = "../../x";
    CHECK_EQ_INT(crs_event_pack(&ev, &buf, &len), 0);
    CHECK_EQ_INT(crs_event_unpack(buf, len, &back), CRS_EPROTO);
    CHECK(back == NULL);
    crs_free(buf);
    ev.event_id = "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011";
    ev.kind = (Certrelay__V1__EventKind)3;
    CHECK_EQ_INT(crs_event_pack(&ev, &buf, &len), 0);
    CHECK_EQ_INT(crs_event_unpack(buf, len, &back), CRS_EPROTO);
    crs_free(buf);
    CHECK_EQ_INT(crs_event_unpack((const uint8_t *)"\xff\xff\xff", 3, &back), CRS_EPROTO);
    crs_event_free(NULL);
}

int main(void)
{
    test_names();
    test_masks();
    test_pack_unpack();
    return CHECK_DONE();
}
