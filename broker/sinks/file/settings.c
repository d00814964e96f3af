/*
 * Configuration of the file drop sink ([sink.NAME] type = file). Delivery lives apart, in
 * driver.c; this file only turns keys into struct crs_file_sink_config.
 *
 *   [sink.archive]
 *   type      = file
 *   directory = D:\issued
 *   name      = {{request_id}}-{{event}}   ; file name without extension
 *   json      = true                       ; <name>.json with the whole event
 *   der       = true                       ; <name>.cer / <name>.crl
 *
 * The name template is compiled here, when the configuration is loaded, so that an unknown
 * field is reported with the line of the `name` key rather than at the first delivery.
 */
#include <stdio.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "sinks/file/settings.h"
#include "sinks/sink.h"
#include "render/template.h"

#define FILE_NAME_DEFAULT "{{request_id}}-{{event}}"

static int file_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return CRS_ECONFIG;
}

static int file_init(void **typed)
{
    struct crs_file_sink_config *fc;

    if (typed == NULL)
        return CRS_EINVAL;
    *typed = NULL;
    fc = crs_calloc(1, sizeof(*fc));
    if (fc == NULL)
        return CRS_ENOMEM;
    fc->write_json = 1;
    fc->write_der = 1;
    *typed = fc;
    return 0;
}

/* Compiles src as the name template and stores both, replacing what was there. */
static int file_set_name(struct crs_file_sink_config *fc, const char *src, char *err, size_t errlen)
{
    struct crs_template *t = NULL;
    char *copy;
    int rc;

    /* The template names one file inside `directory`; the values it expands are sanitized when
     * rendered, but its literal text is trusted, so it must not lead out of the directory. */
    if (strchr(src, '/') != NULL || strchr(src, '\\') != NULL)
        return file_error(err, errlen, "must be a file name, not a path");
    rc = crs_template_compile(src, &t, err, errlen);
    if (rc == CRS_ENOMEM)
        return CRS_ENOMEM;
    if (rc != 0)
        return CRS_ECONFIG;
    copy = crs_strdup(src);
    if (copy == NULL) {
        crs_template_free(t);
        return CRS_ENOMEM;
    }
    crs_template_free(fc->name);
    crs_free(fc->name_source);
    fc->name = t;
    fc->name_source = copy;
    return 0;
}

static int file_set(void *typed, const char *key, const char *value, char *err, size_t errlen)
{
    struct crs_file_sink_config *fc = typed;
    char *copy;
    int b;

    if (fc == NULL || key == NULL || value == NULL)
        return CRS_EINVAL;
    if (strcmp(key, "directory") != 0 && strcmp(key, "name") != 0 && strcmp(key, "json") != 0 &&
        strcmp(key, "der") != 0)
        return CRS_ENOENT;
    /* An indented line after a key continues its value; none of these keys spans lines, so it
     * is most likely the next key indented by mistake. */
    if (strchr(value, '\n') != NULL)
        return file_error(err, errlen,
                          "it takes one line, but the next line is indented and was read as its "
                          "continuation");
    if (strcmp(key, "directory") == 0) {
        if (value[0] == '\0')
            return file_error(err, errlen, "must not be empty");
        copy = crs_strdup(value);
        if (copy == NULL)
            return CRS_ENOMEM;
        crs_free(fc->directory);
        fc->directory = copy;
        return 0;
    }
    if (strcmp(key, "name") == 0) {
        if (value[0] == '\0')
            return file_error(err, errlen, "must not be empty");
        return file_set_name(fc, value, err, errlen);
    }
    if (crs_parse_bool(value, &b) != 0)
        return file_error(err, errlen, "expected true or false");
    if (strcmp(key, "json") == 0)
        fc->write_json = b;
    else
        fc->write_der = b;
    return 0;
}

static int file_finish(void *typed, struct crs_sink_config *sc, char *err, size_t errlen)
{
    struct crs_file_sink_config *fc = typed;
    int rc;

    if (fc == NULL)
        return CRS_EINVAL;
    if (fc->directory == NULL)
        return file_error(err, errlen, "missing required key 'directory'");
    if (!fc->write_json && !fc->write_der)
        return file_error(err, errlen,
                          "json and der are both false, so the sink would write "
                          "nothing");
    if (fc->name == NULL) {
        rc = file_set_name(fc, FILE_NAME_DEFAULT, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void file_free(void *typed)
{
    struct crs_file_sink_config *fc = typed;

    if (fc == NULL)
        return;
    crs_free(fc->directory);
    crs_free(fc->name_source);
    crs_template_free(fc->name);
    crs_free(fc);
}

const struct crs_sink_settings crs_file_settings = {
    .init = file_init,
    .set = file_set,
    .finish = file_finish,
    .free = file_free,
};
