/* Wiping secrets before they are freed (see secret.h). */
#include <string.h>

#include "certrelay/alloc.h"
#include "sinks/secret.h"

void crs_secret_free(void *p, size_t n)
{
    /* Stores through a volatile pointer: the compiler may not drop them as dead before free. */
    volatile unsigned char *v = p;

    if (p == NULL)
        return;
    while (n--)
        *v++ = 0;
    crs_free(p);
}

void crs_secret_free_str(char *s)
{
    if (s != NULL)
        crs_secret_free(s, strlen(s));
}
