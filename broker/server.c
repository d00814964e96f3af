/*
 * The pipe server (see server.h).
 *
 * A connection lives as long as its handle is open or one of its events waits for the group
 * commit: each queued event holds a reference, so the Ack (or Nack) callback always finds valid
 * memory, and an event whose connection has gone is still committed, just not answered (the stub
 * spools it and the broker later ignores the duplicate by event_id).
 */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/log.h"
#include "certrelay/sanitize.h"
#include "admin.h"
#include "metrics.h"
#include "platform.h"

#define SERVER_READ_CHUNK (64u * 1024u)

struct conn {
    uv_pipe_t pipe;
    struct crs_server *srv;
    unsigned long long id;
    struct crs_frame_reader reader;
    unsigned refs;     /* the open handle, plus one per event waiting for its commit */
    int hello;         /* Hello received */
    int admitted;      /* the client passed crs_listen_client_authorized */
    int closing;       /* uv_close called: no more reads, writes or answers */
    int paused;        /* reading stopped for backpressure */
    int draining;      /* the broker is stopping: answer what is queued, then close */
    int budget_paused; /* reading stopped because the server's memory budget is spent */
    uv_shutdown_t shutdown;
    size_t unacked;
    size_t unacked_bytes; /* events awaiting their commit, with their bookkeeping */
    size_t unsent_bytes;  /* answers written but not yet taken, with their bookkeeping */
    size_t reader_bytes;  /* the frame reader's buffer, as last counted in srv->held */
    uint64_t accepted_ms, active_ms, frame_ms; /* monotonic; frame_ms 0 without a partial frame */
    /* The protocol version the stub announced: the current one or the previous (frame.h). */
    uint32_t protocol;
    struct conn *prev, *next;
    /* Answers of the group commit being answered, written together by server_flush_answers. */
    uint8_t *out;
    size_t out_len, out_cap;
    struct conn *flush_next; /* on srv->flush while out holds answers (holds a reference) */
    int flush_queued;
};

struct crs_server {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    struct crs_admin *admin;
    struct crs_listener *listener; /* bound by crs_server_bind */
    int listener_open;
    uv_timer_t drain_timer; /* bounds how long stopping waits for answers to drain */
    int drain_timer_open;
    uv_timer_t sweep; /* enforces the Hello, frame and idle deadlines */
    int sweep_open;
    size_t held;     /* reader buffers and unacked bytes of every connection */
    int over_budget; /* held reached the budget: large readers are paused */
    int stopping;
    unsigned long long next_id;
    size_t nconns;
    size_t nclosing; /* of nconns, closed but awaiting their close callback */
    struct conn *conns;
    struct conn *flush; /* connections with buffered answers, until the group's flush */
    void (*stop_cb)(void *arg);
    void *stop_arg;
    /* One read buffer for all connections: libuv calls alloc and read back to back for one
     * stream, and read_cb consumes the bytes (into the connection's frame reader) at once. */
    char readbuf[SERVER_READ_CHUNK];
};

struct write_req {
    uv_write_t req;
    uint8_t *buf;
    size_t cost; /* counted in the connection's unsent_bytes */
};

/* Bookkeeping per allocation, for the byte counts above (malloc's header and rounding). */
#define SERVER_ALLOC_OVERHEAD 32u

int crs_from_uv_error(int uv_err)
{
    switch (uv_err) {
    case 0:
        return 0;
    case UV_ENOMEM:
        return CRS_ENOMEM;
    case UV_EINVAL:
        return CRS_EINVAL;
    case UV_ENOSPC:
        return CRS_ENOSPC;
    case UV_ENOENT:
        return CRS_ENOENT;
    case UV_EEXIST:
        return CRS_EEXIST;
    case UV_EACCES:
    case UV_EPERM:
        return CRS_EACCES;
    case UV_EADDRINUSE:
        return CRS_EADDRINUSE;
    case UV_ECONNREFUSED:
        return CRS_ECONNREFUSED;
    case UV_ETIMEDOUT:
        return CRS_ETIMEDOUT;
    case UV_ECANCELED:
        return CRS_ECANCELED;
    case UV_EAGAIN:
        return CRS_EAGAIN;
    case UV_EOF:
    case UV_EPIPE:
    case UV_ECONNRESET:
        return CRS_ECLOSED;
    case UV_ENOTSUP:
        return CRS_ENOTSUP;
    default:
        return CRS_EIO;
    }
}

static void server_drain_timer_closed(uv_handle_t *h);

static void server_sweep_closed(uv_handle_t *h);

static void server_check_stopped(struct crs_server *s)
{
    if (!s->stopping || s->listener_open || s->nconns > 0)
        return;
    if (s->sweep_open) {
        if (!uv_is_closing((uv_handle_t *)&s->sweep))
            uv_close((uv_handle_t *)&s->sweep, server_sweep_closed);
        return;
    }
    if (s->drain_timer_open) {
        if (!uv_is_closing((uv_handle_t *)&s->drain_timer))
            uv_close((uv_handle_t *)&s->drain_timer, server_drain_timer_closed);
        return;
    }
    if (s->stop_cb == NULL)
        return;
    {
        void (*cb)(void *) = s->stop_cb;
        s->stop_cb = NULL;
        cb(s->stop_arg);
    }
}

/* ---- Bounds: the configuration's, or the defaults in server.h ---- */

static size_t server_budget(const struct crs_server *s)
{
    return s->cfg->memory_budget ? s->cfg->memory_budget : CRS_SERVER_MEMORY_BUDGET;
}

static size_t server_max_conns(const struct crs_server *s)
{
    return s->cfg->max_connections ? s->cfg->max_connections : CRS_SERVER_MAX_CONNECTIONS;
}

static uint64_t server_ms(int64_t configured, unsigned dflt)
{
    return configured > 0 ? (uint64_t)configured : dflt;
}

/* ---- Memory accounting ---- */

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_maybe_resume(struct conn *c);

/* Bytes this connection makes the server hold. */
static size_t conn_held(const struct conn *c)
{
    return c->reader_bytes + c->unacked_bytes;
}

/* Once the total is back under the budget, connections paused for it read again. */
static void server_budget_check(struct crs_server *s)
{
    struct conn *c;

    if (!s->over_budget || s->held >= server_budget(s))
        return;
    s->over_budget = 0;
    crs_info("memory budget for incoming frames available again (%zu bytes held)", s->held);
    for (c = s->conns; c != NULL; c = c->next) {
        if (c->budget_paused) {
            c->budget_paused = 0;
            conn_maybe_resume(c);
        }
    }
}

/* Re-counts the frame reader's buffer after it grew, shrank or was freed. */
static void conn_account_reader(struct conn *c)
{
    struct crs_server *s = c->srv;
    size_t now = c->reader.cap;

    if (s == NULL)
        return;
    s->held = s->held - c->reader_bytes + now;
    c->reader_bytes = now;
    if (s->held >= server_budget(s) && !s->over_budget) {
        s->over_budget = 1;
        crs_warn("memory budget for incoming frames spent (%zu bytes held by %zu connections); "
                 "connections with large frames wait",
                 s->held, s->nconns);
    }
    server_budget_check(s);
}

/* ---- Connection lifetime ---- */

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    crs_frame_reader_free(&c->reader);
    crs_free(c->out);
    crs_free(c);
}

static void conn_closed_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct crs_server *s = c->srv;

    conn_account_reader(c); /* freed by conn_close */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    s->nclosing--;
    /* Events still in the commit are no longer counted against the server (c->srv is cleared:
     * conn_item_done leaves the total alone from now on). */
    s->held -= c->unacked_bytes;
    c->srv = NULL;
    server_budget_check(s);
    conn_unref(c);
    server_check_stopped(s);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->srv != NULL)
        c->srv->nclosing++;
    /* The buffered bytes are no longer needed; the reader may hold up to max_frame. */
    crs_frame_reader_free(&c->reader);
    conn_account_reader(c);
    uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

/* Logs why a connection is dropped (one line, naming it) and closes it. */
static void conn_fail(struct conn *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

static void conn_fail(struct conn *c, const char *fmt, ...)
{
    char why[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    crs_warn("conn %llu: %s; closing", c->id, why);
    conn_close(c);
}

/* Closes after the answers already written have been flushed to the peer. */
static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    conn_close(req->data);
}

static void conn_finish(struct conn *c)
{
    if (c->closing)
        return;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->pipe, conn_shutdown_cb) != 0)
        conn_close(c);
}

/* ---- Answers and backpressure ---- */

static void conn_refuse(struct conn *c);

/*
 * A client that sends faster than we commit, or that never reads its answers, waits in its own
 * socket buffer rather than in our memory: reading stops while too many of its events await the
 * commit, or too many answers await being written.
 */
static int conn_over_limit(const struct conn *c)
{
    return c->unacked >= CRS_SERVER_MAX_UNACKED ||
           c->unacked_bytes >= CRS_SERVER_MAX_UNACKED_BYTES ||
           c->unsent_bytes >= CRS_SERVER_MAX_UNSENT_BYTES || c->budget_paused;
}

static void conn_maybe_resume(struct conn *c)
{
    int rc;

    if (c->closing || c->draining || !c->paused || conn_over_limit(c))
        return;
    c->active_ms = crs_mono_ms(); /* the idle clock starts again */
    c->paused = 0;
    rc = uv_read_start((uv_stream_t *)&c->pipe, conn_alloc_cb, conn_read_cb);
    if (rc != 0)
        conn_fail(c, "cannot resume reading: %s", uv_strerror(rc));
}

static void conn_write_cb(uv_write_t *req, int status)
{
    struct write_req *w = req->data;
    struct conn *c = req->handle->data;

    c->unsent_bytes -= w->cost;
    if (status == 0)
        c->active_ms = crs_mono_ms();
    if (status != 0 && status != UV_ECANCELED && !c->closing) {
        crs_info("conn %llu: cannot send answer: %s", c->id, uv_strerror(status));
        conn_close(c);
    }
    crs_free(w->buf);
    crs_free(w);
    conn_maybe_resume(c);
}

static void conn_send(struct conn *c, uint8_t *buf, size_t len)
{
    struct write_req *w;
    uv_buf_t b;
    int rc;

    w = crs_calloc(1, sizeof(*w));
    if (w == NULL) {
        crs_free(buf);
        conn_fail(c, "out of memory sending an answer");
        return;
    }
    w->buf = buf;
    w->req.data = w;
    w->cost = sizeof(*w) + len + 2 * SERVER_ALLOC_OVERHEAD;
    b = uv_buf_init((char *)buf, (unsigned)len);
    rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, conn_write_cb);
    if (rc == 0)
        c->unsent_bytes += w->cost;
    if (rc != 0) {
        crs_free(buf);
        crs_free(w);
        conn_fail(c, "cannot send answer: %s", uv_strerror(rc));
    }
}

/*
 * Appends the Ack or Nack of one event to the connection's answer buffer, packed in place (no
 * allocation per answer once the buffer has grown). The buffer holds at most the answers of one
 * group for this connection: at most CRS_SERVER_MAX_UNACKED answers of a few hundred bytes.
 */
static int conn_buffer_answer(struct conn *c, const char *event_id, int status, const char *reason)
{
    Certrelay__V1__Envelope env = CERTRELAY__V1__ENVELOPE__INIT;
    Certrelay__V1__Ack ack = CERTRELAY__V1__ACK__INIT;
    Certrelay__V1__Nack nack = CERTRELAY__V1__NACK__INIT;
    size_t n;
    uint8_t *p;

    if (status == 0) {
        ack.event_id = (char *)event_id;
        env.body_case = CERTRELAY__V1__ENVELOPE__BODY_ACK;
        env.ack = &ack;
    } else {
        nack.event_id = (char *)event_id;
        nack.reason = (char *)(reason ? reason : crs_strerror(status));
        env.body_case = CERTRELAY__V1__ENVELOPE__BODY_NACK;
        env.nack = &nack;
    }
    n = certrelay__v1__envelope__get_packed_size(&env);
    if (n > CRS_SERVER_MAX_UNSENT_BYTES)
        return CRS_ETOOBIG;
    if (c->out_cap - c->out_len < CRS_FRAME_HEADER + n) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        uint8_t *grown;
        while (cap - c->out_len < CRS_FRAME_HEADER + n)
            cap *= 2;
        grown = crs_realloc(c->out, cap);
        if (grown == NULL)
            return CRS_ENOMEM;
        c->out = grown;
        c->out_cap = cap;
    }
    p = c->out + c->out_len;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    certrelay__v1__envelope__pack(&env, p + CRS_FRAME_HEADER);
    c->out_len += CRS_FRAME_HEADER + n;
    return 0;
}

/*
 * Writes the buffered answers: first straight into the socket (uv_try_write, the usual case: a
 * few hundred bytes fit), and what the socket does not take goes to uv_write with the buffer
 * handed over. Acks are only buffered after their group's COMMIT returned, so writing them
 * together delays none of them past its durability.
 */
static void conn_flush_answers(struct conn *c)
{
    struct write_req *w;
    uv_buf_t b;
    int n, rc;

    if (c->closing || c->out_len == 0) {
        c->out_len = 0;
        return;
    }
    b = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
    if (n == (int)c->out_len) {
        c->out_len = 0;
        c->active_ms = crs_mono_ms();
        /* A buffer grown for a large group is not kept for the connection's lifetime. */
        if (c->out_cap > 4096) {
            crs_free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        c->out_len = 0;
        conn_fail(c, "cannot send answers: %s", uv_strerror(n));
        return;
    }
    if (n < 0)
        n = 0;
    w = crs_calloc(1, sizeof(*w));
    if (w == NULL) {
        c->out_len = 0;
        conn_fail(c, "out of memory sending answers");
        return;
    }
    /* The rest goes out with the buffer itself; the connection starts a new one. */
    w->buf = c->out;
    w->req.data = w;
    w->cost = sizeof(*w) + c->out_cap + 2 * SERVER_ALLOC_OVERHEAD;
    b = uv_buf_init((char *)c->out + n, (unsigned)(c->out_len - (size_t)n));
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, conn_write_cb);
    if (rc != 0) {
        crs_free(w->buf);
        crs_free(w);
        conn_fail(c, "cannot send answers: %s", uv_strerror(rc));
        return;
    }
    c->unsent_bytes += w->cost;
}

/* The queue's flush callback: every connection answered by the group gets its one write. */
static void server_flush_answers(void *arg)
{
    struct crs_server *s = arg;

    while (s->flush != NULL) {
        struct conn *c = s->flush;
        s->flush = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = 0;
        conn_flush_answers(c);
        if (!c->closing && c->draining && c->unacked == 0)
            conn_finish(c);
        conn_maybe_resume(c);
        conn_unref(c);
    }
}

/* The group commit of an event from this connection finished: buffer its answer. */
static void conn_item_done(struct crs_ingest_item *item, int status, const char *reason)
{
    struct conn *c = item->owner;
    size_t cost = item->len + sizeof(*item) + 2 * SERVER_ALLOC_OVERHEAD;
    int rc;

    c->unacked--;
    c->unacked_bytes -= cost;
    if (c->srv != NULL) {
        c->srv->held -= cost;
        server_budget_check(c->srv);
    }
    crs_metrics_add(status == 0 ? CRS_M_ACKED : CRS_M_NACKED, 1);
    if (!c->closing) {
        rc = conn_buffer_answer(c, item->event_id, status, reason);
        if (rc != 0) {
            conn_fail(c, "cannot encode answer: %s", crs_strerror(rc));
        } else if (!c->flush_queued) {
            c->flush_queued = 1;
            c->refs++;
            c->flush_next = c->srv->flush;
            c->srv->flush = c;
        }
    }
    crs_ingest_item_free(item);
    conn_unref(c);
}

/* ---- Frames ---- */

/*
 * The packed Event inside an Envelope payload. Our encoders write exactly tag 0x12, a varint
 * length and the Event, so the bytes are sliced out without copying; anything else (a foreign
 * encoder's field order) is repacked from the decoded message.
 */
static int conn_event_bytes(const uint8_t *p, size_t n, const Certrelay__V1__Event *ev, int repack,
                            const uint8_t **out, size_t *outlen, uint8_t **owned)
{
    uint64_t v = 0;
    size_t i = 1;
    unsigned shift = 0;

    *owned = NULL;
    if (!repack && n > 1 && p[0] == 0x12) {
        while (i < n && i <= 10) {
            v |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if ((p[i++] & 0x80) == 0) {
                if (v == n - i) {
                    *out = p + i;
                    *outlen = (size_t)v;
                    return 0;
                }
                break;
            }
        }
    }
    {
        int rc = crs_event_pack(ev, owned, outlen);
        *out = *owned;
        return rc;
    }
}

static void conn_on_hello(struct conn *c, const Certrelay__V1__Hello *h)
{
    char version[64], ca[256];

    if (c->hello) {
        conn_fail(c, "second Hello on one connection");
        return;
    }
    /* The current version and the previous one: after an upgrade, certsrv keeps the old module
     * loaded until CertSvc restarts, and it must keep delivering to the new broker. */
    if (!h->has_protocol_version ||
        !crs_protocol_accepts(CRS_PROTOCOL_VERSION, h->protocol_version)) {
        conn_fail(c, "unsupported protocol version %u (this broker speaks %u%s)",
                  h->has_protocol_version ? (unsigned)h->protocol_version : 0u,
                  CRS_PROTOCOL_VERSION, CRS_PROTOCOL_VERSION > 1 ? " and the one before" : "");
        return;
    }
    c->hello = 1;
    c->protocol = h->protocol_version;
    /* Both strings come from the peer: one line each, bounded, before they reach the log. */
    snprintf(version, sizeof(version), "%s", h->stub_version ? h->stub_version : "?");
    snprintf(ca, sizeof(ca), "%s", h->ca_config ? h->ca_config : "?");
    crs_sanitize_oneline(version);
    crs_sanitize_oneline(ca);
    if (c->protocol != CRS_PROTOCOL_VERSION)
        crs_info("conn %llu: stub %s of CA \"%s\" speaks the previous protocol version %u; "
                 "restart CertSvc to load the current module",
                 c->id, version, ca, (unsigned)c->protocol);
    else
        crs_debug("conn %llu: hello from stub %s, CA \"%s\"", c->id, version, ca);
}

static void conn_on_event(struct conn *c, const uint8_t *payload, size_t len,
                          const Certrelay__V1__Event *ev)
{
    struct crs_ingest_item *item = NULL;
    const uint8_t *body;
    uint8_t *owned = NULL;
    size_t blen = 0;
    int rc;

    if (!c->hello) {
        conn_fail(c, "Event before Hello");
        return;
    }
    rc = crs_event_validate(ev);
    if (rc != 0) {
        conn_fail(c, "invalid event of %zu bytes: %s", len, crs_strerror(rc));
        return;
    }
    /* The envelope is ours (decoded above); a non-canonical id is rewritten and repacked. */
    rc = crs_event_id_canonicalize((Certrelay__V1__Event *)ev);
    if (rc < 0) {
        conn_fail(c, "invalid event id");
        return;
    }
    /* The alert kinds are the broker's own (expiry.c): a client that sends one is refused, the
     * event alone, so that no forged "expired" alert reaches a sink. */
    if (((uint32_t)ev->kind & CRS_EVENT_ALERTS) != 0) {
        uint8_t *buf = NULL;
        size_t n = 0;
        char why[128];

        snprintf(why, sizeof(why), "event kind %s is raised by the broker only; refused",
                 crs_event_name((uint32_t)ev->kind));
        crs_warn("conn %llu: event %s refused: %s", c->id, ev->event_id, why);
        crs_metrics_add(CRS_M_NACKED, 1);
        rc = crs_frame_nack(ev->event_id, why, &buf, &n);
        if (rc == 0)
            conn_send(c, buf, n);
        else
            conn_fail(c, "cannot encode answer: %s", crs_strerror(rc));
        return;
    }
    rc = conn_event_bytes(payload, len, ev, rc == 1, &body, &blen, &owned);
    if (rc == 0)
        rc = crs_ingest_item_new(c->srv->cfg, ev, body, blen, &item);
    crs_free(owned);
    if (rc != 0) {
        conn_fail(c, "cannot queue event: %s", crs_strerror(rc));
        return;
    }
    crs_metrics_add(CRS_M_RECEIVED, 1);
    item->owner = c;
    item->done = conn_item_done;
    c->refs++;
    c->unacked++;
    c->unacked_bytes += item->len + sizeof(*item) + 2 * SERVER_ALLOC_OVERHEAD;
    c->srv->held += item->len + sizeof(*item) + 2 * SERVER_ALLOC_OVERHEAD;
    crs_queue_ingest(c->srv->q, item);
}

/* ---- Admin requests (admin.h); the connection stays referenced until the reply ---- */

static void conn_admin_reply(void *ctx, int status, const char *error, const char *result)
{
    struct conn *c = ctx;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    if (!c->closing) {
        rc = crs_frame_admin_reply(status, error, result, &buf, &len);
        if (rc == 0)
            conn_send(c, buf, len);
        else
            conn_fail(c, "cannot encode admin reply: %s", crs_strerror(rc));
    }
    conn_unref(c);
}

static void conn_on_admin(struct conn *c, const Certrelay__V1__AdminRequest *req)
{
    if (!c->hello) {
        conn_fail(c, "AdminRequest before Hello");
        return;
    }
    c->refs++;
    if (c->srv->admin == NULL || c->srv->stopping)
        conn_admin_reply(c, CRS_EAGAIN, "the broker is starting or stopping", NULL);
    else
        crs_admin_request(c->srv->admin, req->command, req->params_json, conn_admin_reply, c);
}

static void conn_on_frame(struct conn *c, const uint8_t *payload, size_t len)
{
    Certrelay__V1__Envelope *env = NULL;
    int rc;

    rc = crs_envelope_decode(payload, len, &env);
    if (rc == CRS_ETOOBIG) {
        conn_fail(c,
                  "frame of %zu bytes would decode to too much memory (more than %u elements "
                  "in a repeated field, or an estimated %zu bytes)",
                  len, CRS_PB_MAX_REPEATED, CRS_PB_DECODED_MAX(len));
        return;
    }
    if (rc != 0) {
        conn_fail(c, "undecodable frame of %zu bytes (%s)", len, crs_strerror(rc));
        return;
    }
    switch (env->body_case) {
    case CERTRELAY__V1__ENVELOPE__BODY_HELLO:
        conn_on_hello(c, env->hello);
        break;
    case CERTRELAY__V1__ENVELOPE__BODY_EVENT:
        conn_on_event(c, payload, len, env->event);
        break;
    case CERTRELAY__V1__ENVELOPE__BODY_ADMIN_REQUEST:
        conn_on_admin(c, env->admin_request);
        break;
    default:
        conn_fail(c, "unexpected %s from a client",
                  env->body_case == CERTRELAY__V1__ENVELOPE__BODY_ACK    ? "Ack"
                  : env->body_case == CERTRELAY__V1__ENVELOPE__BODY_NACK ? "Nack"
                                                                         : "AdminReply");
        break;
    }
    crs_envelope_free(env);
}

/* The length the frame at the read position announces, for the log line of a refused frame. */
static unsigned long conn_announced(const struct crs_frame_reader *r)
{
    const uint8_t *p;

    if (r->buf == NULL || r->len - r->start < CRS_FRAME_HEADER)
        return 0;
    p = r->buf + r->start;
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

static void conn_frame_error(struct conn *c, int rc)
{
    if (rc == CRS_ETOOBIG)
        conn_fail(c, "frame of %lu bytes exceeds max_frame %zu", conn_announced(&c->reader),
                  c->reader.max);
    else if (rc == CRS_EPROTO)
        conn_fail(c, "zero-length frame");
    else
        conn_fail(c, "cannot read frame: %s", crs_strerror(rc));
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    const uint8_t *payload;
    size_t len;
    int rc;

    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        size_t pending = crs_frame_reader_pending(&c->reader);
        if (nread != UV_EOF)
            conn_fail(c, "read error: %s", uv_strerror((int)nread));
        else if (pending > 0)
            conn_fail(c, "connection closed in the middle of a frame (%zu bytes of it received)",
                      pending);
        else {
            crs_debug("conn %llu: closed by the peer", c->id);
            conn_close(c);
        }
        return;
    }
    /* Who the client is is asked once its first bytes are here, before any is parsed: a named
     * pipe tells the client's token (ImpersonateNamedPipeClient) only after a read. */
    if (!c->admitted) {
        if (!crs_listen_client_authorized(&c->pipe, c->srv->cfg->ca_account)) {
            conn_refuse(c);
            return;
        }
        c->admitted = 1;
    }
    c->active_ms = crs_mono_ms();
    if (c->frame_ms == 0)
        c->frame_ms = c->active_ms;
    rc = crs_frame_reader_feed(&c->reader, buf->base, (size_t)nread);
    conn_account_reader(c);
    if (rc != 0) {
        conn_frame_error(c, rc);
        return;
    }
    /* Every event of this read joins one group commit (the first does not go alone). */
    crs_queue_hold(c->srv->q);
    while (!c->closing && (rc = crs_frame_reader_next(&c->reader, &payload, &len)) == 1) {
        c->frame_ms = 0;
        conn_on_frame(c, payload, len);
    }
    crs_queue_release(c->srv->q);
    if (c->closing)
        return;
    conn_account_reader(c);
    if (rc < 0) {
        conn_frame_error(c, rc);
        return;
    }
    /* The frame deadline runs from the first byte of a frame still incomplete. */
    if (crs_frame_reader_pending(&c->reader) == 0)
        c->frame_ms = 0;
    else if (c->frame_ms == 0)
        c->frame_ms = c->active_ms;
    /* Over the server's budget, large holders wait; small events keep flowing. */
    if (c->srv->over_budget && conn_held(c) > CRS_SERVER_SMALL_BYTES)
        c->budget_paused = 1;
    /* Backpressure (see conn_over_limit); reading resumes as answers go out. */
    if (conn_over_limit(c) && !c->paused) {
        c->paused = 1;
        uv_read_stop(stream);
    }
}

/* ---- Deadlines and eviction ---- */

/*
 * The connection to give up for a new one when every slot is taken: the oldest that has not said
 * Hello, else the one idle longest with nothing outstanding. NULL when every connection is busy.
 */
static struct conn *server_victim(struct crs_server *s, const struct conn *except)
{
    struct conn *c, *best = NULL;
    int best_hello = 1;

    for (c = s->conns; c != NULL; c = c->next) {
        if (c == except || c->closing || c->draining)
            continue;
        if (!c->hello) {
            if (best_hello || c->accepted_ms < best->accepted_ms)
                best = c;
            best_hello = 0;
            continue;
        }
        if (!best_hello || c->unacked > 0 || c->frame_ms != 0 || c->unsent_bytes > 0)
            continue;
        if (best == NULL || c->active_ms < best->active_ms)
            best = c;
    }
    return best;
}

static void server_sweep_cb(uv_timer_t *t)
{
    struct crs_server *s = t->data;
    uint64_t now = crs_mono_ms();
    uint64_t hello = server_ms(s->cfg->hello_timeout_ms, CRS_SERVER_HELLO_MS);
    uint64_t frame = server_ms(s->cfg->frame_timeout_ms, CRS_SERVER_FRAME_MS);
    uint64_t idle = server_ms(s->cfg->idle_timeout_ms, CRS_SERVER_IDLE_MS);
    struct conn *c, *next;

    for (c = s->conns; c != NULL; c = next) {
        next = c->next; /* conn_fail closes asynchronously: c stays linked until its callback */
        if (c->closing || c->draining)
            continue;
        if (!c->hello && now - c->accepted_ms >= hello)
            conn_fail(c, "no Hello within %llu ms of connecting", (unsigned long long)hello);
        else if (c->frame_ms != 0 && now - c->frame_ms >= frame)
            conn_fail(c, "frame not completed within %llu ms (%zu bytes of it received)",
                      (unsigned long long)frame, crs_frame_reader_pending(&c->reader));
        else if (c->hello && c->unacked == 0 && c->frame_ms == 0 && !c->paused &&
                 now - c->active_ms >= idle) {
            crs_debug("conn %llu: idle for %llu ms; closing", c->id, (unsigned long long)idle);
            conn_close(c);
        }
    }
}

static void server_sweep_closed(uv_handle_t *h)
{
    struct crs_server *s = h->data;

    s->sweep_open = 0;
    server_check_stopped(s);
}

/* ---- Listener ---- */

/*
 * A client the platform check refused gets one AdminReply saying so before the connection is
 * closed, so that `certrelay status` run by the wrong account prints a clear refusal rather than
 * "connection closed"; a stub reads it as an unexpected answer and spools, as before.
 */
static void conn_refuse(struct conn *c)
{
    uint8_t *buf = NULL;
    size_t len = 0;

    crs_warn("conn %llu: client not authorized; closing", c->id);
    if (crs_frame_admin_reply(CRS_EACCES,
                              "not authorized: only root or the broker's own account (on Windows: "
                              "SYSTEM and Administrators) may use the broker's pipe",
                              NULL, &buf, &len) != 0) {
        conn_close(c);
        return;
    }
    conn_send(c, buf, len);
    conn_finish(c);
}

static void server_on_connection(struct crs_listener *listener, int status, void *arg)
{
    struct crs_server *s = arg;
    struct conn *c;
    int rc;

    if (status != 0) {
        crs_warn("accepting a connection failed: %s", crs_strerror(status));
        return;
    }
    c = crs_calloc(1, sizeof(*c));
    if (c == NULL) {
        crs_error("out of memory accepting a connection");
        return;
    }
    c->srv = s;
    c->id = ++s->next_id;
    c->refs = 1;
    c->accepted_ms = c->active_ms = crs_mono_ms();
    crs_frame_reader_init(&c->reader, s->cfg->max_frame);
    rc = uv_pipe_init(s->loop, &c->pipe, 0);
    if (rc != 0) {
        crs_error("cannot set up connection: %s", uv_strerror(rc));
        crs_free(c);
        return;
    }
    c->pipe.data = c;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    rc = crs_listen_accept(listener, &c->pipe);
    if (rc != 0) {
        conn_fail(c, "accept failed: %s", crs_strerror(rc));
        return;
    }
    if (s->nconns - s->nclosing > server_max_conns(s)) {
        struct conn *victim = server_victim(s, c);
        if (victim == NULL) {
            conn_fail(c, "too many connections (%zu), all busy", server_max_conns(s));
            return;
        }
        conn_fail(victim, "%s, and all %zu connections are taken",
                  victim->hello ? "idle longest" : "no Hello yet", server_max_conns(s));
    }
    rc = uv_read_start((uv_stream_t *)&c->pipe, conn_alloc_cb, conn_read_cb);
    if (rc != 0) {
        conn_fail(c, "cannot start reading: %s", uv_strerror(rc));
        return;
    }
    crs_debug("conn %llu: accepted", c->id);
}

int crs_server_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_server **out)
{
    struct crs_server *s;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL || cfg->listen == NULL)
        return CRS_EINVAL;
    s = crs_calloc(1, sizeof(*s));
    if (s == NULL)
        return CRS_ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    rc = uv_timer_init(loop, &s->drain_timer);
    if (rc != 0) {
        crs_free(s);
        return crs_from_uv_error(rc);
    }
    s->drain_timer.data = s;
    s->drain_timer_open = 1;
    *out = s;
    return 0;
}

int crs_server_bind(struct crs_server *s)
{
    int rc;

    if (s == NULL || s->stopping || s->listener != NULL)
        return CRS_EINVAL;
    rc = crs_listen_bind(s->loop, s->cfg->listen, s->cfg->ca_account, &s->listener);
    if (rc == 0)
        s->listener_open = 1;
    return rc;
}

void crs_server_set_config(struct crs_server *s, const struct crs_config *cfg)
{
    if (s != NULL && cfg != NULL)
        s->cfg = cfg;
}

void crs_server_set_admin(struct crs_server *s, struct crs_admin *a)
{
    if (s != NULL)
        s->admin = a;
}

int crs_server_start(struct crs_server *s, struct crs_queue *q)
{
    int rc;

    if (s == NULL || q == NULL || s->stopping || s->listener == NULL)
        return CRS_EINVAL;
    s->q = q;
    crs_queue_set_ingest_flush(q, server_flush_answers, s);
    rc = crs_listen_start(s->listener, server_on_connection, s);
    if (rc != 0) {
        crs_error("cannot listen on %s: %s", s->cfg->listen, crs_strerror(rc));
        return rc;
    }
    if (!s->sweep_open) {
        /* A quarter of the shortest deadline, between 25 ms and a second, is precise enough. */
        uint64_t period = server_ms(s->cfg->hello_timeout_ms, CRS_SERVER_HELLO_MS);
        if (server_ms(s->cfg->frame_timeout_ms, CRS_SERVER_FRAME_MS) < period)
            period = server_ms(s->cfg->frame_timeout_ms, CRS_SERVER_FRAME_MS);
        if (server_ms(s->cfg->idle_timeout_ms, CRS_SERVER_IDLE_MS) < period)
            period = server_ms(s->cfg->idle_timeout_ms, CRS_SERVER_IDLE_MS);
        period /= 4;
        if (period > 1000)
            period = 1000;
        if (period < 25)
            period = 25;
        uv_timer_init(s->loop, &s->sweep);
        s->sweep.data = s;
        s->sweep_open = 1;
        uv_timer_start(&s->sweep, server_sweep_cb, period, period);
        uv_unref((uv_handle_t *)&s->sweep);
    }
    crs_info("listening on %s", s->cfg->listen);
    return 0;
}

static void server_drain_timer_closed(uv_handle_t *h)
{
    struct crs_server *s = h->data;

    s->drain_timer_open = 0;
    server_check_stopped(s);
}

/* A client that does not read its answers must not hold the broker's stop up for ever. */
static void server_drain_timeout(uv_timer_t *t)
{
    struct crs_server *s = t->data;
    struct conn *c;

    for (c = s->conns; c != NULL; c = c->next) {
        if (!c->closing)
            conn_fail(c, "answers not taken within %u ms of stopping", CRS_SERVER_DRAIN_MS);
    }
}

static void server_listener_closed(void *arg)
{
    struct crs_server *s = arg;

    s->listener = NULL;
    s->listener_open = 0;
    server_check_stopped(s);
}

void crs_server_stop(struct crs_server *s, void (*cb)(void *arg), void *arg)
{
    struct conn *c;

    if (s == NULL || s->stopping)
        return;
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    /* Closing the listener removes its name (crs_listen_close), so stubs see "no broker" at once
     * and spool instead of waiting for their timeout. */
    if (s->listener_open)
        crs_listen_close(s->listener, server_listener_closed, s);
    if (s->drain_timer_open)
        uv_timer_start(&s->drain_timer, server_drain_timeout, CRS_SERVER_DRAIN_MS, 0);
    /* A connection with events in the group commit stops reading and stays open until they are
     * answered, so the batch in flight is acked rather than left for the stub to spool. */
    for (c = s->conns; c != NULL; c = c->next) {
        if (c->closing || c->draining)
            continue;
        if (c->unacked == 0) {
            conn_close(c);
        } else {
            c->draining = 1;
            uv_read_stop((uv_stream_t *)&c->pipe);
        }
    }
    server_check_stopped(s);
}

void crs_server_free(struct crs_server *s)
{
    if (s == NULL)
        return;
    crs_free(s);
}
