/*
 * Wiping secrets before they are freed (include/certrelay/secret.h). Reading and sealing secret
 * files is per platform: lib/unix/secret.c, lib/win/secret.c.
 */
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/secret.h"

void crs_secret_free(void *p, size_t len)
{
    /* Stores through a volatile pointer: the compiler may not drop them as dead before free. */
    volatile unsigned char *v = p;

    if (p == NULL)
        return;
    while (len--)
        *v++ = 0;
    crs_free(p);
}

void crs_secret_free_str(char *s)
{
    if (s != NULL)
        crs_secret_free(s, strlen(s));
}
