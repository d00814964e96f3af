#ifndef CERTRELAY_RANDOM_H
#define CERTRELAY_RANDOM_H

#include <stddef.h>

/*
 * Fills buf with len bytes from the operating system's cryptographic random source: getrandom(2)
 * on Linux, getentropy(3) elsewhere on Unix, BCryptGenRandom on Windows. 0 or CRS_EINVAL /
 * CRS_EIO; on failure buf is undefined.
 */
int crs_random(void *buf, size_t len);

#endif
