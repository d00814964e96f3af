/*
 * Base64 (RFC 4648 section 4, standard alphabet, '=' padding), lib/base64.c: the one encoder and
 * decoder of the project (JSON binary members, webhook signatures, mail attachments).
 */
#ifndef CERTRELAY_BASE64_H
#define CERTRELAY_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Base64 (RFC 4648, padded) of data into a fresh string (crs_free). NULL on allocation failure. */
char *crs_base64_encode(const uint8_t *data, size_t len);
/* The same into out, which must hold (len + 2) / 3 * 4 + 1 bytes; returns the characters written
 * (without the NUL). */
size_t crs_base64_encode_to(const uint8_t *data, size_t len, char *out);
/* Decodes standard base64 (whitespace ignored). 0, CRS_EINVAL or CRS_ENOMEM. */
int crs_base64_decode(const char *text, uint8_t **out, size_t *outlen);

#endif
