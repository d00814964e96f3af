/*
 * Fuzz target for the configuration reader: the INI reader (broker/config/ini.c) over the raw
 * bytes, NULs and all, then the whole configuration loader (broker/config/config.c with every sink
 * type's settings) over the same text. It checks what an administrator relies on: a file is
 * either loaded or refused with one "FILE:LINE: message" line, and items never point outside the
 * text. Built like fuzz_frame.c: a libFuzzer target with clang, a corpus replayer everywhere.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "config/config.h"
#include "config/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The loader reads files of at most 1 MiB; larger inputs teach the fuzzer nothing new. */
#define FUZZ_MAX (64u * 1024u)

static void check_span(const char *text, size_t len, const char *p, size_t n)
{
    if (n > 0 && (p < text || p + n > text + len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct crs_ini ini;
    struct crs_ini_item it;
    struct crs_config *cfg = NULL;
    char msg[128], err[CRS_CONFIG_ERRLEN];
    char *copy;
    int rc;

    if (size > FUZZ_MAX)
        return 0;
    if (crs_ini_init(&ini, text, size, msg, sizeof(msg)) == 0) {
        while ((rc = crs_ini_next(&ini, &it, msg, sizeof(msg))) == 1) {
            check_span(text, size, it.name, it.namelen);
            check_span(text, size, it.value, it.valuelen);
            if (it.line != ini.lineno || it.line < 1)
                abort();
            if (it.kind == CRS_INI_CONTINUATION && it.valuelen == 0)
                abort();
        }
        if (rc != 0 && (rc != CRS_ECONFIG || msg[0] == '\0'))
            abort();
    }

    copy = crs_malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    rc = crs_config_load_string("fuzz.ini", copy, &cfg, err, sizeof(err));
    if (rc == 0) {
        if (cfg == NULL || cfg->state_dir == NULL)
            abort();
        crs_config_free(cfg);
    } else {
        /* Refused: no configuration, and the message names the file and a line. */
        if (cfg != NULL || (rc != CRS_ENOMEM && strncmp(err, "fuzz.ini:", 9) != 0))
            abort();
    }
    crs_free(copy);
    return 0;
}
