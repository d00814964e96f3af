/*
 * All of CertRelay's heap allocation goes through these wrappers so that tests can make the Nth
 * allocation fail (SQLite's fault simulation) and prove every failure path is handled.
 */
#ifndef CERTRELAY_ALLOC_H
#define CERTRELAY_ALLOC_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "certrelay/printf.h"

void *crs_malloc(size_t size);
void *crs_calloc(size_t n, size_t size);
void *crs_realloc(void *ptr, size_t size);
void crs_free(void *ptr);
char *crs_strdup(const char *s);
char *crs_strndup(const char *s, size_t n);
/* printf into a fresh allocation; NULL on allocation failure. */
char *crs_asprintf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 1, 2)))
#endif
    ;

/*
 * Fault injection for tests: after `n` more successful allocations, every allocation fails until
 * reset with a negative n (the default, meaning never fail). Thread-safe (atomic counter).
 */
void crs_alloc_fail_after(long n);

/* A protobuf-c allocator backed by crs_malloc/crs_free, for protobuf_c_message_unpack. */
extern ProtobufCAllocator crs_protobuf_allocator;

#endif
