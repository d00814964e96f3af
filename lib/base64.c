/*
 * Base64 (RFC 4648 section 4, the standard alphabet with '=' padding) for the binary fields of
 * the JSON document: DER certificates, CRLs, extensions and raw requests.
 *
 * The decoder is strict about everything except whitespace, so that one byte string has exactly
 * one accepted spelling apart from line breaks: characters outside the alphabet, data after
 * padding, impossible lengths and non-zero pad bits (RFC 4648 section 3.5) are all rejected.
 * Padding may be left out, but when present it must be complete.
 */
#include <stdint.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/base64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

enum { B64_BAD = -1, B64_SPACE = -2, B64_PAD = -3 };

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    if (c == '=')
        return B64_PAD;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v')
        return B64_SPACE;
    return B64_BAD;
}

size_t crs_base64_encode_to(const uint8_t *data, size_t len, char *out)
{
    size_t i, n = 0;

    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

        out[n++] = b64_alphabet[v >> 18 & 0x3f];
        out[n++] = b64_alphabet[v >> 12 & 0x3f];
        out[n++] = b64_alphabet[v >> 6 & 0x3f];
        out[n++] = b64_alphabet[v & 0x3f];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;

        out[n++] = b64_alphabet[v >> 18 & 0x3f];
        out[n++] = b64_alphabet[v >> 12 & 0x3f];
        out[n++] = '=';
        out[n++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;

        out[n++] = b64_alphabet[v >> 18 & 0x3f];
        out[n++] = b64_alphabet[v >> 12 & 0x3f];
        out[n++] = b64_alphabet[v >> 6 & 0x3f];
        out[n++] = '=';
    }
    out[n] = '\0';
    return n;
}

char *crs_base64_encode(const uint8_t *data, size_t len)
{
    char *out;

    if (!data && len > 0)
        return NULL;
    /* 4 output bytes per started group of 3, plus the NUL, must fit in a size_t. */
    if (len / 3 >= (SIZE_MAX - 5) / 4)
        return NULL;
    out = crs_malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    crs_base64_encode_to(data, len, out);
    return out;
}

/*
 * The first pass validates the text and counts its data characters, so the second can decode
 * into a buffer of the exact size without checking anything but the final pad bits.
 */
int crs_base64_decode(const char *text, uint8_t **out, size_t *outlen)
{
    size_t ndata = 0, npad = 0, n = 0, i;
    uint32_t acc = 0;
    unsigned bits = 0;
    uint8_t *buf = NULL;
    int rc;

    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!text || !out || !outlen)
        return CRS_EINVAL;

    for (i = 0; text[i] != '\0'; i++) {
        int v = b64_value((unsigned char)text[i]);

        if (v == B64_SPACE)
            continue;
        if (v == B64_PAD) {
            npad++;
            continue;
        }
        if (v == B64_BAD || npad > 0)
            return CRS_EINVAL;
        ndata++;
    }
    if (npad > 2 || ndata % 4 == 1 || (npad > 0 && (ndata + npad) % 4 != 0))
        return CRS_EINVAL;

    /* One spare byte so that empty input still yields a valid, freeable pointer. */
    buf = crs_malloc(ndata / 4 * 3 + 3);
    if (!buf)
        return CRS_ENOMEM;
    for (i = 0; text[i] != '\0'; i++) {
        int v = b64_value((unsigned char)text[i]);

        if (v < 0)
            continue;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        rc = CRS_EINVAL;
        goto cleanup;
    }
    *out = buf;
    *outlen = n;
    return 0;

cleanup:
    crs_free(buf);
    return rc;
}
