/*
 * The spool: where the stub leaves events the broker could not acknowledge in time, and where
 * the broker picks them up. One file per event, named "<event_id>.crev", holding exactly one
 * frame (4-byte big-endian length + Envelope{event}) so that the broker reads it with the same
 * decoder as the pipe. Written atomically (temp, fsync, rename, fsync dir): a file with the final
 * name is always complete. Re-spooling the same event rewrites the same name.
 */
#ifndef CERTRELAY_SPOOL_H
#define CERTRELAY_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay.pb-c.h"

#define CRS_SPOOL_SUFFIX ".crev"

/* Writes an already packed Event (with its id) into dir. */
int crs_spool_write(const char *dir, const char *event_id, const uint8_t *event_bytes, size_t len);
/* Reads and decodes one spool file into a packed Event (crs_free) after validating it. */
int crs_spool_read(const char *path, uint8_t **event_bytes, size_t *len);

#endif
