/*
 * The sink types the broker knows: one line per type, naming its settings (sinks/<type>/settings.c)
 * and its delivery driver (sinks/<type>/driver.c). Adding a type is one folder under sinks/ plus
 * its line here (and its sources in broker/CMakeLists.txt).
 */
#include <string.h>

#include "sinks/sink.h"

extern const struct crs_sink_settings crs_file_settings, crs_webhook_settings, crs_email_settings;
extern const struct crs_sink_driver crs_file_driver, crs_webhook_driver, crs_email_driver;

const struct crs_sink_type crs_sink_type_file = {"file", &crs_file_settings, &crs_file_driver};
const struct crs_sink_type crs_sink_type_webhook = {"webhook", &crs_webhook_settings,
                                                    &crs_webhook_driver};
const struct crs_sink_type crs_sink_type_email = {"email", &crs_email_settings, &crs_email_driver};

static const struct crs_sink_type *const sink_types[] = {
    &crs_sink_type_file,
    &crs_sink_type_webhook,
    &crs_sink_type_email,
};

const struct crs_sink_type *crs_sink_type_find(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < sizeof(sink_types) / sizeof(sink_types[0]); i++)
        if (strcmp(sink_types[i]->name, name) == 0)
            return sink_types[i];
    return NULL;
}

const struct crs_sink_driver *crs_sink_driver_find(const char *name)
{
    const struct crs_sink_type *type = crs_sink_type_find(name);

    return type != NULL ? type->driver : NULL;
}
