/*
 * Typed configuration of each sink type, filled by lib/sinkconf/<type>.c and read by the broker's
 * delivery code (broker/sinks/<type>.c).
 */
#ifndef CERTRELAY_SINKCONF_H
#define CERTRELAY_SINKCONF_H

#include "certrelay/config.h"
#include "certrelay/template.h"

/* [sink.X] type = file */
struct crs_file_sink_config {
    char *directory;              /* required; created if missing */
    char *name_source;            /* the template text, default "{{request_id}}-{{event}}" */
    struct crs_template *name;    /* compiled; rendered with CRS_ESCAPE_FILENAME */
    int write_json;               /* json = true (default) */
    int write_der;                /* der = true (default): .cer / .crl files */
};

extern const struct crs_sink_type crs_sink_type_file;

#endif
