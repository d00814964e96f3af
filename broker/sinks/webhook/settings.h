/*
 * Settings of the webhook sink ([sink.X] type = webhook), filled by settings.c when the
 * configuration is loaded and read by the driver (driver.c).
 */
#ifndef CERTRELAY_SINKS_WEBHOOK_SETTINGS_H
#define CERTRELAY_SINKS_WEBHOOK_SETTINGS_H

#include <stddef.h>
#include "sinks/tls.h"
#include "sinks/webhook/formats.h"

/* [sink.X] type = webhook */
struct crs_webhook_sink_config {
    char *url;                      /* http:// or https:// URL; or */
    char *url_file;                 /* a file holding it (URLs that embed a secret token) */
    enum crs_webhook_format format; /* format = json (default) | cloudevents | teams | slack */
    char *secret_file;              /* Standard Webhooks secret (base64, optional whsec_) */
    char *bearer_token_file;        /* Authorization: Bearer <token> */
    struct crs_tls_config tls;
    char **headers; /* extra "Name: value" lines (repeatable `header` key) */
    size_t nheaders;
};

#endif
