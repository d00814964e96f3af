/*
 * `certrelay simulate`: drives the stub core the way certsrv drives the exit module DLL. One
 * crs_stub is shared by C worker threads (certsrv calls Notify concurrently); for every call a
 * worker builds a fresh property table (certsrv's fresh server object per Notify) and calls
 * crs_stub_notify with it. Synthetic events carry the embedded real DER certificates and CRLs;
 * --from replays scripted ones through the same path.
 *
 * Output, on stdout, one figure per line:
 *
 *   sent 1000
 *   acked 990
 *   spooled 10
 *   failed 0
 *   latency_us p50 412 p90 803 p99 2210 max 5120
 *
 * The exit status is 0 only when every event was acknowledged or spooled.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/defaults.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/stub.h"
#include "certrelay/uuid.h"
#include "commands.h"
#include "fixtures.h"
#include "proptable.h"
#include "script_reader.h"

#define SIM_MAX_COUNT         10000000u
#define SIM_MAX_CONCURRENCY   1024u
#define SIM_MAX_TIMEOUT_MS    600000u
#define SIM_MAX_ERRORS_SHOWN  10
#define SIM_DEFAULT_CA_CONFIG "ca01.sim.certrelay.test\\CertRelay-Sim-CA"
#define SIM_CA_NAME           "CertRelay-Sim-CA"
#define SIM_CA_HOST           "ca01.sim.certrelay.test"

/* certsrv's request dispositions and a few of its other constants. */
#define SIM_DISP_PENDING              9
#define SIM_DISP_ISSUED               20
#define SIM_DISP_REVOKED              21
#define SIM_DISP_DENIED               31
#define SIM_CR_IN_PKCS10              0x100
#define SIM_CERTSRV_E_TEMPLATE_DENIED ((int32_t)0x80094012u)
#define SIM_EXTENSION_CRITICAL_FLAG   0x1u
#define SIM_EXTENSION_ORIGIN_POLICY   0x20000u
#define SIM_CRL_STATE_VALID           3
#define SIM_CRL_STATE_INVALID         4

enum { OUT_NONE = 0, OUT_ACKED, OUT_SPOOLED, OUT_FAILED };

/* The default mix: what a busy enterprise CA reports, mostly issuance. */
static const struct {
    uint32_t kind;
    uint32_t weight;
} sim_mix[] = {
    {CRS_EVENT_ISSUED, 60},   {CRS_EVENT_REVOKED, 8},    {CRS_EVENT_PENDING, 6},
    {CRS_EVENT_DENIED, 6},    {CRS_EVENT_CRL_ISSUED, 6}, {CRS_EVENT_RETRIEVE_PENDING, 4},
    {CRS_EVENT_UNREVOKED, 3}, {CRS_EVENT_IMPORTED, 3},   {CRS_EVENT_STARTUP, 2},
    {CRS_EVENT_SHUTDOWN, 2},
};
#define SIM_NMIX (sizeof(sim_mix) / sizeof(sim_mix[0]))

struct sim_opts {
    const char *pipe;
    const char *spool_dir;
    const char *from;
    const char *ca_config;
    uint32_t mask;
    uint64_t count;
    uint32_t concurrency;
    uint32_t timeout_ms;
    uint64_t seed;
    uint64_t first_request_id;
    int prebuilt;
};

struct sim_run {
    struct crs_stub *stub;
    struct script *script;
    uint64_t seed;
    uint64_t first_request_id; /* RequestID of event 0; certsrv never reuses one */
    uint64_t count;
    uint32_t mask;
    uint32_t total_weight;
    uint64_t next; /* the next event index, taken with an atomic add */
    uint64_t *latency_us;
    uint8_t *outcome;
    uv_mutex_t err_lock;
    unsigned errors_shown;
    /* --prebuilt: one packed event per kind of the mix, built before the clock starts. */
    struct sim_prebuilt *prebuilt[SIM_NMIX];
};

/*
 * A packed event built once through the stub core; each call sends a copy with a fresh event id
 * written over the old one (the id is a fixed-length string field, so the encoding stays valid).
 */
struct sim_prebuilt {
    uint32_t kind;
    size_t len;
    size_t id_at; /* offset of the 36 characters of the event id in bytes */
    uint8_t bytes[];
};

static void sim_usage(FILE *f)
{
    fprintf(f,
            "usage: certrelay simulate [--pipe PATH] [--count N] [--concurrency C]\n"
            "                          [--events LIST] [--spool-dir DIR] [--timeout-ms T]\n"
            "                          [--from FILE] [--ca-config S] [--seed S]\n"
            "                          [--first-request-id N] [--prebuilt]\n\n"
            "Sends events to the broker through the stub core, as certsrv would.\n\n"
            "  --pipe PATH       broker address (default: the platform default)\n"
            "  --count N         number of synthetic events (default 100)\n"
            "  --concurrency C   calling threads sharing one stub (default 4)\n"
            "  --events LIST     kinds to draw from, e.g. issued,revoked (default: a mix of all)\n"
            "  --spool-dir DIR   where unacknowledged events go (default: the platform default)\n"
            "  --timeout-ms T    per-call bound (default 2000)\n"
            "  --from FILE       send the JSON array of scripted events in FILE, in order, on\n"
            "                    one thread (--count and --concurrency are ignored)\n"
            "  --ca-config S     the CA config string (default " SIM_DEFAULT_CA_CONFIG ")\n"
            "  --seed S          seed for the synthetic mix (default 1)\n"
            "  --first-request-id N  RequestID of the first event; the others follow (default 1)\n"
            "  --prebuilt        build one event per kind up front and send copies with fresh ids\n"
            "                    (a load generator for benchmarks: the calls skip the property\n"
            "                    reads and the encoding, so the broker is what is measured)\n\n"
            "Prints sent, acked, spooled, failed and latency_us percentiles; exits 0 only when\n"
            "every event was acknowledged or spooled.\n");
}

/* splitmix64: a small, good mixing function; event i's draws depend only on (seed, i). */
static uint64_t sim_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t sim_pick_kind(const struct sim_run *run, uint64_t rnd)
{
    uint32_t r = (uint32_t)(rnd % run->total_weight);
    for (size_t i = 0; i < SIM_NMIX; i++) {
        if (!(run->mask & sim_mix[i].kind))
            continue;
        if (r < sim_mix[i].weight)
            return sim_mix[i].kind;
        r -= sim_mix[i].weight;
    }
    return CRS_EVENT_ISSUED;
}

/* ---------------------------------------------------------------------------------------------
 * The synthetic server object
 * ------------------------------------------------------------------------------------------- */

static int sim_fill_certificate(struct proptable *pt, const struct fixture_cert *c, int64_t id)
{
    int rc = 0;
    rc |= proptable_add_string(pt, PT_CERTIFICATE, "SerialNumber", c->serial);
    rc |= proptable_add_binary(pt, PT_CERTIFICATE, "RawCertificate", c->der, c->len);
    rc |= proptable_add_date(pt, PT_CERTIFICATE, "NotBefore", c->not_before_ms);
    rc |= proptable_add_date(pt, PT_CERTIFICATE, "NotAfter", c->not_after_ms);
    rc |= proptable_add_string(pt, PT_CERTIFICATE, "DistinguishedName", c->dn);
    rc |= proptable_add_string(pt, PT_CERTIFICATE, "CommonName", c->cn);
    rc |= proptable_add_string(pt, PT_CERTIFICATE, "CertificateHash", c->sha1);
    rc |= proptable_add_string(pt, PT_CERTIFICATE, "CertificateTemplate", c->template_name);
    rc |= proptable_add_string(pt, PT_CERTIFICATE, "PublicKeyAlgorithm", c->pubkey_alg);
    rc |= proptable_add_long(pt, PT_CERTIFICATE, "PublicKeyLength", c->pubkey_bits);
    rc |= proptable_add_long(pt, PT_CERTIFICATE, "RequestID", id);
    if (c->upn != NULL)
        rc |= proptable_add_string(pt, PT_CERTIFICATE, "UPN", c->upn);
    if (c->email != NULL)
        rc |= proptable_add_string(pt, PT_CERTIFICATE, "EMail", c->email);
    for (size_t i = 0; i < c->n_ext; i++) {
        const struct fixture_ext *x = &c->ext[i];
        uint32_t flags =
            SIM_EXTENSION_ORIGIN_POLICY | (x->critical ? SIM_EXTENSION_CRITICAL_FLAG : 0);
        rc |= proptable_add_ext(pt, x->oid, x->critical, flags, x->der, x->len);
    }
    return rc ? CRS_ENOMEM : 0;
}

static int sim_fill_crls(struct proptable *pt, int64_t id)
{
    const struct crs_embedded_file *crl = fixture_file("crl.der");
    const struct crs_embedded_file *delta = fixture_file("delta.der");
    int rc = 0;

    if (crl == NULL || delta == NULL)
        return CRS_ENOENT;
    /* Two CA certificates (a renewal); on every other event the older one's CRL is invalid, so
     * the stub's walk must skip it. */
    rc |= proptable_add_long(pt, PT_CA, "CertCount", 2);
    rc |= proptable_add_long(pt, PT_CA, "CRLState.0",
                             id % 2 ? SIM_CRL_STATE_INVALID : SIM_CRL_STATE_VALID);
    rc |= proptable_add_long(pt, PT_CA, "CRLState.1", SIM_CRL_STATE_VALID);
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof(name), "RawCRL.%d", i);
        rc |= proptable_add_binary(pt, PT_CA, name, crl->data, crl->len);
        snprintf(name, sizeof(name), "RawDeltaCRL.%d", i);
        rc |= proptable_add_binary(pt, PT_CA, name, delta->data, delta->len);
    }
    return rc ? CRS_ENOMEM : 0;
}

/* Fills pt with what certsrv would hold for request `id` at a `kind` notification. */
static int sim_fill(struct proptable *pt, uint32_t kind, int64_t id, uint64_t rnd)
{
    const struct fixture_cert *c = fixture_cert((size_t)((id - 1) % (int64_t)fixture_cert_count()));
    int64_t now = crs_now_ms();
    char buf[256];
    int rc = 0;

    rc |= proptable_add_string(pt, PT_CA, "SanitizedCAName", SIM_CA_NAME);
    rc |= proptable_add_string(pt, PT_CA, "MachineDNSName", SIM_CA_HOST);
    rc |= proptable_add_long(pt, PT_CA, "CAType", 0);
    if (kind == CRS_EVENT_STARTUP || kind == CRS_EVENT_SHUTDOWN)
        return rc ? CRS_ENOMEM : 0;
    if (kind == CRS_EVENT_CRL_ISSUED)
        return rc ? CRS_ENOMEM : sim_fill_crls(pt, id);

    int disposition = SIM_DISP_ISSUED;
    const char *message = "Issued";
    int has_cert = 1;
    switch (kind) {
    case CRS_EVENT_PENDING:
        disposition = SIM_DISP_PENDING;
        message = "Taken Under Submission";
        has_cert = 0;
        break;
    case CRS_EVENT_DENIED:
        disposition = SIM_DISP_DENIED;
        message = "Denied by Policy Module";
        has_cert = 0;
        break;
    case CRS_EVENT_REVOKED:
        disposition = SIM_DISP_REVOKED;
        message = "Revoked";
        break;
    case CRS_EVENT_UNREVOKED:
        message = "Issued (released from hold)";
        break;
    case CRS_EVENT_RETRIEVE_PENDING:
        message = "Issued (retrieved after approval)";
        break;
    case CRS_EVENT_IMPORTED:
        message = "Imported";
        break;
    default:
        break;
    }

    unsigned user = (unsigned)(rnd >> 8) % 500;
    rc |= proptable_add_long(pt, PT_REQUEST, "RequestID", id);
    rc |= proptable_add_long(pt, PT_REQUEST, "RequestType", SIM_CR_IN_PKCS10);
    rc |= proptable_add_long(pt, PT_REQUEST, "Disposition", disposition);
    rc |= proptable_add_string(pt, PT_REQUEST, "DispositionMessage", message);
    rc |= proptable_add_long(pt, PT_REQUEST, "StatusCode",
                             kind == CRS_EVENT_DENIED ? SIM_CERTSRV_E_TEMPLATE_DENIED : 0);
    snprintf(buf, sizeof(buf), "CONTOSO\\user%03u", user);
    rc |= proptable_add_string(pt, PT_REQUEST, "RequesterName", buf);
    rc |= proptable_add_string(pt, PT_REQUEST, "CallerName", buf);
    rc |= proptable_add_date(pt, PT_REQUEST, "SubmittedWhen",
                             now - 1000 * (int64_t)(1 + (rnd >> 20) % 3600));
    if (kind != CRS_EVENT_PENDING)
        rc |= proptable_add_date(pt, PT_REQUEST, "ResolvedWhen", now);
    if (kind == CRS_EVENT_REVOKED) {
        static const int reasons[] = {0, 1, 3, 4, 5, 6};
        rc |= proptable_add_date(pt, PT_REQUEST, "RevokedWhen", now);
        rc |= proptable_add_date(pt, PT_REQUEST, "RevokedEffectiveWhen", now);
        rc |= proptable_add_long(pt, PT_REQUEST, "RevokedReason", reasons[(rnd >> 40) % 6]);
    }
    snprintf(buf, sizeof(buf), "CertificateTemplate:%s\nccm:client%03u.contoso.test",
             c->template_name, user);
    rc |= proptable_add_string(pt, PT_REQUEST, "RequestAttributes", buf);
    rc |= proptable_add_string(pt, PT_REQUEST, "CertificateTemplate", c->template_name);
    rc |= proptable_add_attr(pt, "CertificateTemplate", c->template_name);
    snprintf(buf, sizeof(buf), "client%03u.contoso.test", user);
    rc |= proptable_add_attr(pt, "ccm", buf);
    /* certsrv holds an archived private key for key-archival requests; the stub must never
     * read it. Its presence here lets tests prove that. */
    if (c->email != NULL) {
        static const uint8_t key[] = "SIMULATED-ARCHIVED-KEY-NEVER-EXPORT";
        rc |= proptable_add_binary(pt, PT_REQUEST, "RawArchivedKey", key, sizeof(key) - 1);
    }
    if (rc != 0)
        return CRS_ENOMEM;
    return has_cert ? sim_fill_certificate(pt, c, id) : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------------------------- */

static void sim_report_error(struct sim_run *run, uint64_t idx, uint32_t kind, int rc)
{
    uv_mutex_lock(&run->err_lock);
    if (run->errors_shown < SIM_MAX_ERRORS_SHOWN) {
        const char *name = crs_event_name(kind);
        fprintf(stderr, "certrelay simulate: event %" PRIu64 " (%s) lost: %s\n", idx + 1,
                name ? name : "?", crs_strerror(rc));
        run->errors_shown++;
    }
    uv_mutex_unlock(&run->err_lock);
}

/* Sends one copy of the prebuilt event of kind with a fresh id; copies is the worker's buffer. */
static int sim_send_prebuilt(struct sim_run *run, uint32_t kind, uint8_t *copies,
                             struct crs_stub_result *res)
{
    char id[CRS_UUID_STRLEN + 1];
    int rc;

    for (size_t i = 0; i < SIM_NMIX && run->prebuilt[i] != NULL; i++) {
        const struct sim_prebuilt *pb = run->prebuilt[i];
        if (pb->kind != kind)
            continue;
        rc = crs_uuid7(id);
        if (rc != 0)
            return rc;
        memcpy(copies, pb->bytes, pb->len);
        memcpy(copies + pb->id_at, id, CRS_UUID_STRLEN);
        return crs_stub_send_packed(run->stub, id, copies, pb->len, res);
    }
    return CRS_EINVAL;
}

/* Builds the event of kind once, through the same path crs_stub_notify takes, and packs it. */
static int sim_prebuild(struct sim_run *run, uint32_t kind, struct sim_prebuilt **out)
{
    struct proptable pt;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = NULL;
    struct sim_prebuilt *pb = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0, at;
    int rc;

    *out = NULL;
    proptable_init(&pt);
    rc = sim_fill(&pt, kind, (int64_t)run->first_request_id, sim_mix64(run->seed));
    if (rc != 0)
        goto cleanup;
    proptable_reader(&pt, &rd);
    rc = crs_stub_build_event(run->stub, kind, &rd, &ev);
    if (rc == 0)
        rc = crs_event_pack(ev, &bytes, &len);
    if (rc != 0)
        goto cleanup;
    /* The id's one occurrence: 36 characters no other field of a synthetic event holds. */
    for (at = 0; at + CRS_UUID_STRLEN <= len; at++)
        if (memcmp(bytes + at, ev->event_id, CRS_UUID_STRLEN) == 0)
            break;
    if (at + CRS_UUID_STRLEN > len) {
        rc = CRS_EINTERNAL;
        goto cleanup;
    }
    pb = crs_malloc(sizeof(*pb) + len);
    if (pb == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    pb->kind = kind;
    pb->len = len;
    pb->id_at = at;
    memcpy(pb->bytes, bytes, len);
    *out = pb;

cleanup:
    crs_free(bytes);
    crs_stub_event_free(ev);
    proptable_clear(&pt);
    return rc;
}

static void sim_worker(void *arg)
{
    struct sim_run *run = arg;
    uint8_t *copies = NULL;

    if (run->prebuilt[0] != NULL) {
        size_t max = 0;
        for (size_t i = 0; i < SIM_NMIX && run->prebuilt[i] != NULL; i++)
            if (run->prebuilt[i]->len > max)
                max = run->prebuilt[i]->len;
        copies = crs_malloc(max);
        if (copies == NULL) {
            sim_report_error(run, 0, 0, CRS_ENOMEM);
            return;
        }
    }
    for (;;) {
        uint64_t idx = __atomic_fetch_add(&run->next, 1, __ATOMIC_SEQ_CST);
        if (idx >= run->count)
            break;

        struct proptable pt;
        struct crs_prop_reader rd;
        struct crs_stub_result res;
        uint32_t kind;
        int rc = 0;

        proptable_init(&pt);
        if (run->prebuilt[0] != NULL) {
            uint64_t rnd = sim_mix64(run->seed ^ sim_mix64(idx));
            kind = sim_pick_kind(run, rnd);
            rc = sim_send_prebuilt(run, kind, copies, &res);
        } else if (run->script != NULL) {
            kind = script_kind(run->script, (size_t)idx);
            script_reader(run->script, (size_t)idx, &rd);
        } else {
            uint64_t rnd = sim_mix64(run->seed ^ sim_mix64(idx));
            kind = sim_pick_kind(run, rnd);
            rc = sim_fill(&pt, kind, (int64_t)(run->first_request_id + idx), rnd);
            proptable_reader(&pt, &rd);
        }
        if (rc == 0 && run->prebuilt[0] == NULL)
            rc = crs_stub_notify(run->stub, kind, &rd, &res);
        if (rc == 0) {
            run->outcome[idx] = res.outcome == CRS_STUB_ACKED ? OUT_ACKED : OUT_SPOOLED;
            run->latency_us[idx] = res.elapsed_us;
        } else {
            run->outcome[idx] = OUT_FAILED;
            run->latency_us[idx] = 0;
            sim_report_error(run, idx, kind, rc);
        }
        proptable_clear(&pt);
    }
    crs_free(copies);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-th percentile (nearest rank) of sorted values. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(((uint64_t)n * q + 99) / 100);
    return v[rank ? rank - 1 : 0];
}

static void sim_print(const struct sim_run *run, uint64_t *sorted)
{
    uint64_t acked = 0, spooled = 0, failed = 0, sent = 0;
    size_t n = 0;

    for (uint64_t i = 0; i < run->count; i++) {
        switch (run->outcome[i]) {
        case OUT_ACKED:
            acked++;
            break;
        case OUT_SPOOLED:
            spooled++;
            break;
        case OUT_FAILED:
            failed++;
            break;
        default:
            continue;
        }
        sent++;
        if (run->outcome[i] != OUT_FAILED)
            sorted[n++] = run->latency_us[i];
    }
    qsort(sorted, n, sizeof(*sorted), cmp_u64);
    printf("sent %" PRIu64 "\nacked %" PRIu64 "\nspooled %" PRIu64 "\nfailed %" PRIu64 "\n", sent,
           acked, spooled, failed);
    printf("latency_us p50 %" PRIu64 " p90 %" PRIu64 " p99 %" PRIu64 " max %" PRIu64 "\n",
           percentile(sorted, n, 50), percentile(sorted, n, 90), percentile(sorted, n, 99),
           n ? sorted[n - 1] : 0);
    fflush(stdout);
}

/* ---------------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return CRS_EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return CRS_EINVAL;
    *out = v;
    return 0;
}

/* Parses argv (argv[0] is "simulate"). Returns 0, 1 for --help, or 2 after printing an error. */
static int sim_parse(int argc, char **argv, struct sim_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->count = 100;
    o->concurrency = 4;
    o->timeout_ms = CRS_STUB_DEFAULT_TIMEOUT_MS;
    o->seed = 1;
    o->first_request_id = 1;
    o->mask = CRS_EVENT_ALL;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        char name[32];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (strcmp(arg, "--prebuilt") == 0) {
            o->prebuilt = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "certrelay simulate: unexpected argument '%s'\n", arg);
            return 2;
        }
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof(name)) {
            fprintf(stderr, "certrelay simulate: unknown option '%s'\n", arg);
            return 2;
        }
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "certrelay simulate: %s needs a value\n", name);
            return 2;
        }

        uint64_t u = 0;
        int bad = 0;
        if (strcmp(name, "--pipe") == 0) {
            o->pipe = val;
        } else if (strcmp(name, "--spool-dir") == 0) {
            o->spool_dir = val;
        } else if (strcmp(name, "--from") == 0) {
            o->from = val;
        } else if (strcmp(name, "--ca-config") == 0) {
            o->ca_config = val;
        } else if (strcmp(name, "--count") == 0) {
            bad = parse_u64(val, 0, SIM_MAX_COUNT, &o->count);
        } else if (strcmp(name, "--concurrency") == 0) {
            bad = parse_u64(val, 1, SIM_MAX_CONCURRENCY, &u);
            o->concurrency = (uint32_t)u;
        } else if (strcmp(name, "--timeout-ms") == 0) {
            bad = parse_u64(val, 1, SIM_MAX_TIMEOUT_MS, &u);
            o->timeout_ms = (uint32_t)u;
        } else if (strcmp(name, "--first-request-id") == 0) {
            bad = parse_u64(val, 1, (uint64_t)INT32_MAX, &o->first_request_id);
        } else if (strcmp(name, "--seed") == 0) {
            bad = parse_u64(val, 0, UINT64_MAX, &o->seed);
        } else if (strcmp(name, "--events") == 0) {
            char err[128];
            if (crs_event_mask_parse(val, &o->mask, err, sizeof(err)) != 0) {
                fprintf(stderr, "certrelay simulate: --events: %s\n", err);
                return 2;
            }
        } else {
            fprintf(stderr, "certrelay simulate: unknown option '%s'\n", name);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "certrelay simulate: bad value for %s: '%s'\n", name, val);
            return 2;
        }
    }
    return 0;
}

int tool_simulate_main(int argc, char **argv)
{
    struct sim_opts o;
    struct sim_run run;
    struct crs_stub_options so;
    uv_thread_t *threads = NULL;
    uint64_t *sorted = NULL;
    uint32_t nthreads = 0;
    int lock_ready = 0;
    int status = 1;
    int rc;

    memset(&run, 0, sizeof(run));
    rc = sim_parse(argc, argv, &o);
    if (rc == 1) {
        sim_usage(stdout);
        return 0;
    }
    if (rc != 0)
        return 2;

    if (o.from != NULL) {
        char err[512];
        if (script_load(o.from, &run.script, err, sizeof(err)) != 0) {
            fprintf(stderr, "certrelay simulate: %s\n", err);
            return 2;
        }
        run.count = script_count(run.script);
        o.concurrency = 1; /* "in order": one caller */
    } else {
        rc = fixtures_init();
        if (rc != 0) {
            fprintf(stderr, "certrelay simulate: embedded fixtures unusable: %s\n",
                    crs_strerror(rc));
            goto cleanup;
        }
        run.count = o.count;
        run.mask = o.mask;
        run.seed = o.seed;
        run.first_request_id = o.first_request_id;
        for (size_t i = 0; i < SIM_NMIX; i++)
            if (o.mask & sim_mix[i].kind)
                run.total_weight += sim_mix[i].weight;
    }

    memset(&so, 0, sizeof(so));
    so.pipe = o.pipe;
    so.spool_dir = o.spool_dir;
    so.timeout_ms = o.timeout_ms;
    so.ca_config = o.ca_config ? o.ca_config : SIM_DEFAULT_CA_CONFIG;
    /* Keep one idle connection per caller so that steady load reuses connections. */
    so.max_connections = o.concurrency > 8 ? o.concurrency : 8;
    rc = crs_stub_new(&so, &run.stub);
    if (rc != 0) {
        fprintf(stderr, "certrelay simulate: cannot set up the stub: %s\n", crs_strerror(rc));
        goto cleanup;
    }

    if (o.prebuilt && run.script == NULL) {
        size_t n = 0;
        for (size_t i = 0; i < SIM_NMIX && rc == 0; i++)
            if (o.mask & sim_mix[i].kind)
                rc = sim_prebuild(&run, sim_mix[i].kind, &run.prebuilt[n++]);
        if (rc != 0) {
            fprintf(stderr, "certrelay simulate: cannot prebuild the events: %s\n",
                    crs_strerror(rc));
            goto cleanup;
        }
    }

    run.outcome = crs_calloc(run.count + 1, sizeof(*run.outcome));
    run.latency_us = crs_calloc(run.count + 1, sizeof(*run.latency_us));
    sorted = crs_calloc(run.count + 1, sizeof(*sorted));
    threads = crs_calloc(o.concurrency, sizeof(*threads));
    if (run.outcome == NULL || run.latency_us == NULL || sorted == NULL || threads == NULL) {
        fprintf(stderr, "certrelay simulate: out of memory\n");
        goto cleanup;
    }
    if (uv_mutex_init(&run.err_lock) != 0)
        goto cleanup;
    lock_ready = 1;

    for (nthreads = 0; nthreads < o.concurrency; nthreads++) {
        if (uv_thread_create(&threads[nthreads], sim_worker, &run) != 0) {
            fprintf(stderr, "certrelay simulate: cannot start thread %u\n", nthreads + 1);
            break;
        }
    }
    for (uint32_t i = 0; i < nthreads; i++)
        uv_thread_join(&threads[i]);
    if (nthreads == 0)
        goto cleanup;

    sim_print(&run, sorted);
    status = 0;
    for (uint64_t i = 0; i < run.count; i++)
        if (run.outcome[i] != OUT_ACKED && run.outcome[i] != OUT_SPOOLED)
            status = 1;

cleanup:
    if (lock_ready)
        uv_mutex_destroy(&run.err_lock);
    for (size_t i = 0; i < SIM_NMIX; i++)
        crs_free(run.prebuilt[i]);
    crs_stub_free(run.stub);
    script_free(run.script);
    fixtures_free();
    crs_free(run.outcome);
    crs_free(run.latency_us);
    crs_free(sorted);
    crs_free(threads);
    return status;
}
