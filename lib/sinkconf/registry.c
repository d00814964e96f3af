/*
 * The sink types the configuration knows, one line each. A new type adds its
 * `extern const struct crs_sink_type crs_sink_type_<name>;` to include/certrelay/sinkconf.h, its
 * parser to lib/sinkconf/sources.cmake, and one line to the table below.
 */
#include <string.h>
#include "certrelay/config.h"
#include "certrelay/sinkconf.h"

static const struct crs_sink_type *const sink_types[] = {
    &crs_sink_type_file,
    &crs_sink_type_webhook,
    &crs_sink_type_email,
    NULL,
};

const struct crs_sink_type *crs_sink_type_find(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; sink_types[i] != NULL; i++)
        if (strcmp(sink_types[i]->name, name) == 0)
            return sink_types[i];
    return NULL;
}
