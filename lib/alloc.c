/*
 * Allocation wrappers with fault injection (include/certrelay/alloc.h). The countdown is a
 * process-wide atomic so that a test can fail "the Nth allocation from now" even when the code
 * under test allocates from several threads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "certrelay/alloc.h"

#if defined(_MSC_VER)
#error "CertRelay builds with GCC or Clang (mingw-w64 on Windows)"
#endif

/* Negative: never fail. Zero: fail now. Positive: allocations left before failing. */
static long fail_countdown = -1;

void crs_alloc_fail_after(long n)
{
    __atomic_store_n(&fail_countdown, n, __ATOMIC_SEQ_CST);
}

/* Returns 1 when the current allocation must fail. */
static int should_fail(void)
{
    long cur = __atomic_load_n(&fail_countdown, __ATOMIC_SEQ_CST);
    while (cur >= 0) {
        if (cur == 0)
            return 1;
        if (__atomic_compare_exchange_n(&fail_countdown, &cur, cur - 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return 0;
    }
    return 0;
}

void *crs_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *crs_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *crs_realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void crs_free(void *ptr)
{
    free(ptr);
}

char *crs_strndup(const char *s, size_t n)
{
    char *out;
    size_t len = 0;

    if (s == NULL)
        return NULL;
    while (len < n && s[len] != '\0')
        len++;
    out = crs_malloc(len + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

char *crs_strdup(const char *s)
{
    return s ? crs_strndup(s, strlen(s)) : NULL;
}

char *crs_asprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *out;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    out = crs_malloc((size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return crs_malloc(size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    crs_free(ptr);
}

ProtobufCAllocator crs_protobuf_allocator = {pb_alloc, pb_free, NULL};
