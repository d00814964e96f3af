/*
 * The delivery drivers the broker knows, by sink type name. One line per driver; a driver's
 * configuration half is registered separately, in lib/sinkconf/registry.c.
 */
#include <string.h>

#include "sink.h"

static const struct crs_sink_driver *const sink_drivers[] = {
    &crs_sink_driver_file,
    &crs_sink_driver_webhook,
    &crs_sink_driver_email,
};

const struct crs_sink_driver *crs_sink_driver_find(const char *type)
{
    size_t i;

    if (type == NULL)
        return NULL;
    for (i = 0; i < sizeof(sink_drivers) / sizeof(sink_drivers[0]); i++) {
        if (strcmp(sink_drivers[i]->type, type) == 0)
            return sink_drivers[i];
    }
    return NULL;
}
