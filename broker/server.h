/*
 * The pipe server: accepts stub connections, reads frames (Hello, then Events), hands each event
 * to the queue's group commit and answers Ack once it is committed, or Nack when it could not be.
 * A connection that breaks the protocol is logged in one line and closed; others carry on.
 */
#ifndef CERTRELAY_BROKER_SERVER_H
#define CERTRELAY_BROKER_SERVER_H

#include <uv.h>
#include "config/config.h"
#include "queue.h"

/* Events received on one connection and not yet answered before it stops reading (backpressure),
 * and the same bound in bytes. */
#define CRS_SERVER_MAX_UNACKED       1024u
#define CRS_SERVER_MAX_UNACKED_BYTES (64u * 1024u * 1024u)
/* Answers written but not yet taken by a client that does not read them. */
#define CRS_SERVER_MAX_UNSENT_BYTES (1024u * 1024u)
/* How long a stop waits for connections to take the answers to their last events. */
#define CRS_SERVER_DRAIN_MS 5000u
/* Connections served at once; more are accepted and closed at once with a log line. */
#define CRS_SERVER_MAX_CONNECTIONS 1024u

struct crs_server;

int crs_server_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_server **out);
/* Binds cfg->listen (CRS_EADDRINUSE when another broker answers there). Done before the queue
 * is opened, so a second broker is refused before it touches the database. */
int crs_server_bind(struct crs_server *s);
/* A reloaded configuration for events received from now on (listen is not re-read). */
void crs_server_set_config(struct crs_server *s, const struct crs_config *cfg);
struct crs_admin;
/* Serves admin requests (the CLI) with a; before this, they are answered "not available". */
void crs_server_set_admin(struct crs_server *s, struct crs_admin *a);
/* Starts accepting connections; their events go to q. */
int crs_server_start(struct crs_server *s, struct crs_queue *q);
/* Closes the listener and every connection; cb runs once all their handles are closed. */
void crs_server_stop(struct crs_server *s, void (*cb)(void *arg), void *arg);
/* Frees a stopped server. NULL is a no-op. Connections still referenced by uncommitted events
 * are freed when those events are done. */
void crs_server_free(struct crs_server *s);

/* Maps a libuv error code to a CRS_E* code (libuv codes are portable, unlike errno values). */
int crs_from_uv_error(int uv_err);

#endif
