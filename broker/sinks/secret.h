/*
 * Freeing what a sink read from a secret file (a password, a signing key, a bearer token, a URL
 * with a token in it): the bytes are overwritten first, so a secret does not linger in memory the
 * allocator hands out again.
 */
#ifndef CERTRELAY_BROKER_SINKS_SECRET_H
#define CERTRELAY_BROKER_SINKS_SECRET_H

#include <stddef.h>

/* Overwrites n bytes at p with zeros and frees p. NULL is a no-op. */
void crs_secret_free(void *p, size_t n);
/* The same for a NUL-terminated string. NULL is a no-op. */
void crs_secret_free_str(char *s);

#endif
