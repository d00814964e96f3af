/*
 * libcurl's multi interface on a libuv loop (broker/curl_uv.h), after curl's
 * docs/examples/multi-uv.c:
 *
 *   curl --socket callback--> uv_poll_start/stop on that socket (one uv_poll_t per socket)
 *   curl --timer callback---> uv_timer_start/stop (one uv_timer_t)
 *   uv_poll / uv_timer fire --> curl_multi_socket_action --> curl_multi_info_read --> done()
 *
 * Two rules of curl's shape everything here:
 * - Never call curl_multi_socket_action from inside a curl callback. A timeout of 0 ms means
 *   "call me as soon as possible": it is served by a 0 ms uv timer, which libuv runs from its
 *   timer phase (loop-driven, never recursively from inside the callback that asked for it).
 * - A socket must not be closed while libuv polls it. Every easy handle gets curl_uv's
 *   CURLOPT_CLOSESOCKETFUNCTION (curl keeps it with the connection), which closes the poller
 *   and only then the socket. The poller's memory lives until libuv's close callback.
 *
 * Pollers follow sockets, not curl's interest in them. When a transfer ends, curl says
 * CURL_POLL_REMOVE for its connection, and the next transfer on the kept-alive connection asks
 * for it again a moment later. Closing and re-creating the poller each time costs five or six
 * system calls per request (epoll_ctl checks, FIONBIO); instead a removed socket's poller is
 * stopped (one epoll_ctl DEL, done at once by libuv) and kept, detached, until curl wants the
 * socket again or closes it through close_fn.
 *
 * Stopping on CURL_POLL_REMOVE is not optional: curl closes some sockets without the close
 * callback (the threaded resolver's socketpair, a connection curl gives up during connect), after
 * saying REMOVE. A poller left registered on such a socket makes libuv's next epoll_ctl fail with
 * EBADF, and libuv aborts the process: that was the abort at shutdown with failing receivers.
 *
 * Completions that do not come from curl (canceled transfers, messages with nothing to send) go
 * through a second 0 ms timer, so a done callback never runs inside the call that caused it.
 * Shutdown is asynchronous for the same reason: the last release may happen inside a done
 * callback, while check_info still walks curl's message queue, so it only marks the multi handle
 * closing and lets that second timer tear it down from the loop.
 */
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "certrelay/text.h"
#include "curl_uv.h"

enum { XFER_IDLE = 0, XFER_RUNNING, XFER_DEFERRED, XFER_DONE };

/* A socket curl asked us to watch. */
struct curl_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct crs_curl_multi *m;
    struct curl_sock *prev, *next;
    int events;   /* UV_READABLE | UV_WRITABLE being polled; 0 when stopped */
    int detached; /* curl said CURL_POLL_REMOVE and has not asked for the socket again */
};

struct crs_curl_multi {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;    /* curl's timeout */
    uv_timer_t deferred; /* out-of-band completions and the final teardown */
    struct curl_sock *socks;
    struct crs_curl_xfer *running;
    struct crs_curl_xfer *dq_head, *dq_tail; /* deferred completions, in order */
    unsigned refs;
    unsigned open_handles; /* uv handles not yet closed (timers and sockets) */
    int closing;
    struct crs_curl_multi *next; /* registry */
};

/* ------------------------------------------------------------------------------------------ */
/* Registry: one multi handle per loop                                                         */
/* ------------------------------------------------------------------------------------------ */

static uv_once_t registry_once = UV_ONCE_INIT;
static uv_mutex_t registry_lock;
static struct crs_curl_multi *registry;
static int global_rc;

/* curl_global_init is not thread-safe on every platform and build: run it exactly once. */
static void registry_init(void)
{
    if (uv_mutex_init(&registry_lock) != 0)
        global_rc = CRS_EINTERNAL;
    else if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        global_rc = CRS_EINTERNAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Counts down the open handles; the last one frees the multi handle once it is closing. */
static void multi_handle_gone(struct crs_curl_multi *m)
{
    m->open_handles--;
    if (m->closing && m->open_handles == 0)
        crs_free(m);
}

static void sock_closed(uv_handle_t *h)
{
    struct curl_sock *cs = h->data;
    struct crs_curl_multi *m = cs->m;

    crs_free(cs);
    multi_handle_gone(m);
}

/* Stops watching a socket and frees its record once libuv is done with it. */
static void sock_close(struct curl_sock *cs)
{
    struct crs_curl_multi *m = cs->m;

    if (cs->prev)
        cs->prev->next = cs->next;
    else
        m->socks = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    cs->prev = cs->next = NULL;
    uv_close((uv_handle_t *)&cs->poll, sock_closed);
}

static void timer_closed(uv_handle_t *h)
{
    multi_handle_gone(h->data);
}

static void multi_teardown(struct crs_curl_multi *m)
{
    struct curl_sock *cs;
    struct crs_curl_xfer *x;

    /* Transfers still here were abandoned by their owner; they get no callback. */
    while ((x = m->running) != NULL) {
        crs_warn("curl: a transfer was still running at shutdown");
        m->running = x->next;
        curl_multi_remove_handle(m->multi, x->easy);
        x->state = XFER_DONE;
        x->prev = x->next = NULL;
    }
    while ((x = m->dq_head) != NULL) {
        m->dq_head = x->next;
        x->state = XFER_DONE;
        x->prev = x->next = NULL;
    }
    m->dq_tail = NULL;
    uv_timer_stop(&m->timer);
    for (cs = m->socks; cs != NULL; cs = cs->next)
        cs->detached = 1;
    /* Closes the cached connections through close_fn, which closes their pollers first. */
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    while (m->socks != NULL)
        sock_close(m->socks);
    uv_close((uv_handle_t *)&m->timer, timer_closed);
    uv_close((uv_handle_t *)&m->deferred, timer_closed);
}

/* ------------------------------------------------------------------------------------------ */
/* Completions                                                                                 */
/* ------------------------------------------------------------------------------------------ */

static void running_unlink(struct crs_curl_multi *m, struct crs_curl_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        m->running = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Hands every finished transfer to its owner. */
static void check_info(struct crs_curl_multi *m)
{
    CURLMsg *msg;
    int pending;

    while (!m->closing && (msg = curl_multi_info_read(m->multi, &pending)) != NULL) {
        struct crs_curl_xfer *x = NULL;
        CURL *easy;
        CURLcode result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg is invalid once the handle is removed: copy what we need first. */
        easy = msg->easy_handle;
        result = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(m->multi, easy);
        if (x == NULL || x->state != XFER_RUNNING)
            continue;
        running_unlink(m, x);
        x->state = XFER_DONE;
        x->done(x, result);
    }
}

static void deferred_cb(uv_timer_t *t)
{
    struct crs_curl_multi *m = t->data;
    struct crs_curl_xfer *list, *x;

    if (m->closing) {
        multi_teardown(m);
        return;
    }
    /* Detach the queue first: a done callback may defer another completion. */
    list = m->dq_head;
    m->dq_head = m->dq_tail = NULL;
    while ((x = list) != NULL && !m->closing) {
        list = x->next;
        x->prev = x->next = NULL;
        x->state = XFER_DONE;
        x->done(x, x->deferred_result);
    }
    /* A release inside a callback closed the multi handle: what is left gets no callback. */
    for (; list != NULL; list = x) {
        x = list->next;
        list->state = XFER_DONE;
        list->prev = list->next = NULL;
    }
}

static void deferred_push(struct crs_curl_multi *m, struct crs_curl_xfer *x, CURLcode result)
{
    x->state = XFER_DEFERRED;
    x->deferred_result = result;
    x->next = NULL;
    x->prev = m->dq_tail;
    if (m->dq_tail)
        m->dq_tail->next = x;
    else
        m->dq_head = x;
    m->dq_tail = x;
    uv_timer_start(&m->deferred, deferred_cb, 0, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* curl's callbacks and the loop's                                                             */
/* ------------------------------------------------------------------------------------------ */

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct curl_sock *cs = h->data;
    struct crs_curl_multi *m = cs->m;
    int flags = 0, running;

    if (m->closing)
        return;
    if (cs->detached) {
        /* Not expected (a detached poller is stopped); never hand curl a socket it let go. */
        uv_poll_stop(&cs->poll);
        cs->events = 0;
        return;
    }
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(m->multi, cs->fd, flags, &running);
    check_info(m);
}

static void timer_cb(uv_timer_t *t)
{
    struct crs_curl_multi *m = t->data;
    int running;

    if (m->closing)
        return;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_info(m);
}

/* CURLMOPT_TIMERFUNCTION. A 0 ms timeout is served by a 0 ms timer: from the loop, not here. */
static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    struct crs_curl_multi *m = userp;

    (void)multi;
    if (m->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

static struct curl_sock *sock_find(struct crs_curl_multi *m, curl_socket_t s)
{
    struct curl_sock *cs;

    for (cs = m->socks; cs != NULL; cs = cs->next) {
        if (cs->fd == s)
            return cs;
    }
    return NULL;
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to hear about socket s. */
static int socket_fn(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct crs_curl_multi *m = userp;
    struct curl_sock *cs = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        /* curl may close the socket right after this, with or without close_fn: stop polling
         * now. The record stays, detached, until curl wants the socket again or close_fn. */
        if (cs != NULL) {
            if (cs->events != 0)
                uv_poll_stop(&cs->poll);
            cs->events = 0;
            cs->detached = 1;
        }
        return 0;
    }
    if (m->closing)
        return 0;
    if (cs == NULL)
        cs = sock_find(m, s);
#ifdef _WIN32
    /* A detached record may belong to a socket curl closed without close_fn whose handle value
     * Windows has handed out again; libuv's Windows poller keeps per-socket state, so start
     * afresh rather than reuse it. (On Unix a poller is only an fd number and is reused.) */
    if (cs != NULL && cs->detached && socketp == NULL) {
        sock_close(cs);
        cs = NULL;
    }
#endif
    if (cs == NULL) {
        cs = crs_calloc(1, sizeof(*cs));
        if (cs == NULL)
            return -1;
        if (uv_poll_init_socket(m->loop, &cs->poll, s) != 0) {
            crs_free(cs);
            return -1;
        }
        cs->poll.data = cs;
        cs->fd = s;
        cs->m = m;
        cs->next = m->socks;
        if (m->socks)
            m->socks->prev = cs;
        m->socks = cs;
        m->open_handles++;
    }
    if (socketp == NULL)
        curl_multi_assign(m->multi, s, cs);
    cs->detached = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (events == cs->events)
        return 0;
    if (events == 0)
        uv_poll_stop(&cs->poll);
    else if (uv_poll_start(&cs->poll, events, poll_cb) != 0)
        return -1;
    cs->events = events;
    return 0;
}

/*
 * CURLOPT_CLOSESOCKETFUNCTION, set on every easy handle and kept by curl with each connection:
 * the poller is closed (which stops it at once) before the socket, never after.
 */
static int close_fn(void *clientp, curl_socket_t s)
{
    struct crs_curl_multi *m = clientp;
    struct curl_sock *cs = sock_find(m, s);

    if (cs != NULL)
        sock_close(cs);
#ifdef _WIN32
    return closesocket(s);
#else
    return close(s);
#endif
}

/* Idle connections kept for reuse, over all sinks on this loop. */
#define CURL_UV_MAXCONNECTS 256

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static int multi_new(uv_loop_t *loop, struct crs_curl_multi **out)
{
    struct crs_curl_multi *m;

    m = crs_calloc(1, sizeof(*m));
    if (m == NULL)
        return CRS_ENOMEM;
    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        crs_free(m);
        return CRS_ENOMEM;
    }
    m->loop = loop;
    m->refs = 1;
    /* Timer initialization cannot fail on a live loop. */
    uv_timer_init(loop, &m->timer);
    uv_timer_init(loop, &m->deferred);
    m->timer.data = m;
    m->deferred.data = m;
    m->open_handles = 2;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    /* libcurl's default keeps four idle connections per transfer still attached when one
     * finishes: between two fetches of the dispatcher few or none are attached, so it closed
     * nearly every connection after its request and a backlog drain paid a new TCP (and TLS)
     * handshake per delivery. A fixed bound keeps them for reuse (concurrency is at most 256 per
     * sink); libcurl still closes connections idle for longer than two minutes. */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)CURL_UV_MAXCONNECTS);
    *out = m;
    return 0;
}

int crs_curl_multi_acquire(uv_loop_t *loop, struct crs_curl_multi **out)
{
    struct crs_curl_multi *m;
    int rc = 0;

    if (out)
        *out = NULL;
    if (loop == NULL || out == NULL)
        return CRS_EINVAL;
    uv_once(&registry_once, registry_init);
    if (global_rc != 0)
        return global_rc;
    uv_mutex_lock(&registry_lock);
    for (m = registry; m != NULL; m = m->next) {
        if (m->loop == loop && !m->closing)
            break;
    }
    if (m != NULL) {
        m->refs++;
    } else {
        rc = multi_new(loop, &m);
        if (rc == 0) {
            m->next = registry;
            registry = m;
        }
    }
    uv_mutex_unlock(&registry_lock);
    if (rc == 0)
        *out = m;
    return rc;
}

void crs_curl_multi_release(struct crs_curl_multi *m)
{
    struct crs_curl_multi **pp;

    if (m == NULL)
        return;
    uv_mutex_lock(&registry_lock);
    if (--m->refs > 0) {
        uv_mutex_unlock(&registry_lock);
        return;
    }
    for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    uv_mutex_unlock(&registry_lock);
    /* Possibly inside a done callback: tear down from the loop, not from here. */
    m->closing = 1;
    uv_timer_stop(&m->timer);
    uv_timer_start(&m->deferred, deferred_cb, 0, 0);
}

int crs_curl_multi_add(struct crs_curl_multi *m, struct crs_curl_xfer *x)
{
    CURLMcode mc;

    if (m == NULL || x == NULL || x->easy == NULL || x->done == NULL)
        return CRS_EINVAL;
    if (m->closing)
        return CRS_ECANCELED;
    x->m = m;
    x->prev = x->next = NULL;
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, close_fn);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETDATA, m);
    mc = curl_multi_add_handle(m->multi, x->easy);
    if (mc != CURLM_OK) {
        x->state = XFER_IDLE;
        return mc == CURLM_OUT_OF_MEMORY ? CRS_ENOMEM : CRS_EINTERNAL;
    }
    x->state = XFER_RUNNING;
    x->next = m->running;
    if (m->running)
        m->running->prev = x;
    m->running = x;
    return 0;
}

void crs_curl_multi_cancel(struct crs_curl_xfer *x)
{
    struct crs_curl_multi *m;

    if (x == NULL || x->m == NULL)
        return;
    m = x->m;
    if (x->state == XFER_RUNNING) {
        running_unlink(m, x);
        curl_multi_remove_handle(m->multi, x->easy);
        deferred_push(m, x, CURLE_ABORTED_BY_CALLBACK);
    } else if (x->state == XFER_DEFERRED) {
        x->deferred_result = CURLE_ABORTED_BY_CALLBACK;
    }
}

int crs_curl_multi_defer(struct crs_curl_multi *m, struct crs_curl_xfer *x, CURLcode result)
{
    if (m == NULL || x == NULL || x->done == NULL)
        return CRS_EINVAL;
    if (m->closing)
        return CRS_ECANCELED;
    x->m = m;
    deferred_push(m, x, result);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Common transfer options                                                                     */
/* ------------------------------------------------------------------------------------------ */

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return k <= n && crs_ascii_casecmp(s + n - k, suffix) == 0;
}

int crs_curl_setup(CURL *easy, int64_t timeout_ms, const char *protocols,
                   const struct crs_tls_config *tls)
{
    CURLcode c = CURLE_OK;

    if (easy == NULL || protocols == NULL)
        return CRS_EINVAL;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(easy, opt, val);                                                  \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 && timeout_ms < INT32_MAX ? timeout_ms : 0));
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, protocols);
#else
    SET(CURLOPT_PROTOCOLS, strstr(protocols, "smtp") ? (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS)
                                                     : (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
#ifdef _WIN32
    /* Schannel checks revocation and fails when a private CA publishes no reachable CRL or OCSP
     * responder; best effort still refuses a certificate that is known to be revoked. */
    SET(CURLOPT_SSL_OPTIONS, (long)CURLSSLOPT_REVOKE_BEST_EFFORT);
#endif
    if (tls != NULL) {
        if (tls->insecure) {
            SET(CURLOPT_SSL_VERIFYPEER, 0L);
            SET(CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
            SET(CURLOPT_SSL_VERIFYPEER, 1L);
            SET(CURLOPT_SSL_VERIFYHOST, 2L);
            if (tls->ca_file != NULL)
                SET(CURLOPT_CAINFO, tls->ca_file);
        }
        if (tls->client_cert != NULL) {
            /* Schannel takes a PKCS#12 file; OpenSSL builds take PEM (or P12 as well). */
            if (ends_with_ci(tls->client_cert, ".pfx") || ends_with_ci(tls->client_cert, ".p12"))
                SET(CURLOPT_SSLCERTTYPE, "P12");
            SET(CURLOPT_SSLCERT, tls->client_cert);
            if (tls->client_key != NULL)
                SET(CURLOPT_SSLKEY, tls->client_key);
        }
    }
#undef SET
    return c == CURLE_OK ? 0 : CRS_EINTERNAL;
}
