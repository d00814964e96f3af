/*
 * The admin channel's broker half: the requests the `certrelay` CLI sends over the pipe after its
 * Hello (proto/certrelay.proto, AdminRequest), answered with one AdminReply each. The server
 * (server.c) hands each request here; queries and changes of the queue run in the queue's lane
 * (queue.h, crs_queue_submit); what only the running broker knows (uptime, attempts in flight,
 * the spool) is added on the loop thread.
 *
 * Who may ask is decided before a connection is served at all (platform.h,
 * crs_listen_client_authorized): root or the broker's own account on Unix, SYSTEM,
 * Administrators or the broker's own account on Windows.
 */
#ifndef CERTRELAY_BROKER_ADMIN_H
#define CERTRELAY_BROKER_ADMIN_H

#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "queue.h"
#include "sinks/sink.h"

struct crs_admin;
struct crs_dispatcher;

/* What the admin handlers read and act on; everything outlives the admin object. */
struct crs_admin_env {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    struct crs_sink *sinks; /* cfg->nsinks, for the attempts in flight */
    struct crs_dispatcher *disp;
    struct crs_retention *retention;
    int64_t started_ms;
    /* Applies the configuration file again (crs_broker_reload): 0 and done later, or an error
     * with a sentence in err and done never called. */
    int (*reload)(void *arg, void (*done)(void *ctx, int status, const char *error), void *ctx,
                  char *err, size_t errlen);
    void *reload_arg;
};

/*
 * The answer to one request: status 0 with result (a JSON object's text), or a negative CRS_E*
 * code with error (a sentence). Called exactly once per request, on the loop thread, possibly
 * before crs_admin_request returns.
 */
typedef void (*crs_admin_reply_cb)(void *ctx, int status, const char *error, const char *result);

int crs_admin_new(const struct crs_admin_env *env, struct crs_admin **out);
void crs_admin_request(struct crs_admin *a, const char *command, const char *params_json,
                       crs_admin_reply_cb reply, void *ctx);
/* After a reload: the configuration and sinks that status reports on. */
void crs_admin_set_config(struct crs_admin *a, const struct crs_config *cfg,
                          struct crs_sink *sinks);
/* Frees the admin object once the queue is closed (every request has been answered). */
void crs_admin_free(struct crs_admin *a);

#endif
