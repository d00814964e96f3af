/*
 * Settings of the file drop sink ([sink.X] type = file), filled by settings.c when the
 * configuration is loaded and read by the driver (driver.c).
 */
#ifndef CERTRELAY_SINKS_FILE_SETTINGS_H
#define CERTRELAY_SINKS_FILE_SETTINGS_H

#include "render/template.h"

/* [sink.X] type = file */
struct crs_file_sink_config {
    char *directory;           /* required; created if missing */
    char *name_source;         /* the template text, default "{{request_id}}-{{event}}" */
    struct crs_template *name; /* compiled; rendered with CRS_ESCAPE_FILENAME */
    int write_json;            /* json = true (default) */
    int write_der;             /* der = true (default): .cer / .crl files */
};

#endif
