/*
 * Settings of the email sink ([sink.X] type = email), filled by settings.c when the
 * configuration is loaded and read by the driver (driver.c).
 */
#ifndef CERTRELAY_SINKS_EMAIL_SETTINGS_H
#define CERTRELAY_SINKS_EMAIL_SETTINGS_H

#include <stddef.h>
#include "render/template.h"
#include "sinks/tls.h"

/* STARTTLS policy of an smtp:// URL (smtps:// is TLS from the first byte). */
enum crs_starttls {
    CRS_STARTTLS_REQUIRED = 0, /* the default: fail (and retry) unless TLS is negotiated */
    CRS_STARTTLS_OPPORTUNISTIC,
    CRS_STARTTLS_OFF
};

struct crs_mailbox {
    char *display; /* NULL when the configuration gave a bare address */
    char *addr;    /* validated addr-spec */
};

/* [sink.X] type = email */
struct crs_email_sink_config {
    char *url;                  /* smtp://host[:port][/helo-domain] or smtps://... */
    int implicit_tls;           /* the URL is smtps:// */
    enum crs_starttls starttls; /* starttls = required | opportunistic | off */
    char *username;             /* AUTH, with password_file */
    char *password_file;
    struct crs_tls_config tls;
    struct crs_mailbox from; /* required */
    struct crs_mailbox *to, *cc, *bcc;
    size_t nto, ncc, nbcc;
    int to_requester;     /* add the address found in the certificate or request */
    char *subject_source; /* subject template text; NULL: the default for each kind */
    struct crs_template *subject;
    char *body_file; /* plain text body template; NULL: the default for each kind */
    struct crs_template *body;
    char *html_body_file; /* optional HTML alternative (values HTML-escaped) */
    struct crs_template *html_body;
    int attach_certificate; /* attach the DER certificate as <serial>.cer */
};

#endif
