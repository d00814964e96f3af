#ifndef CERTRELAY_UUID_H
#define CERTRELAY_UUID_H

#include <stdint.h>

#define CRS_UUID_STRLEN 36

/*
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter seeded randomly each
 * millisecond so ids minted by one process are strictly increasing, then 62 random bits. Ids sort
 * by capture time, which keeps the broker's index append-mostly. Thread-safe. out gets 37 bytes.
 */
int crs_uuid7(char out[CRS_UUID_STRLEN + 1]);
/* True when s is a canonical lowercase or uppercase UUID string. */
int crs_uuid_valid(const char *s);

#endif
