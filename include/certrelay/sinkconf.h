/*
 * Typed configuration of each sink type, filled by lib/sinkconf/<type>.c and read by the broker's
 * delivery code (broker/sinks/<type>.c).
 */
#ifndef CERTRELAY_SINKCONF_H
#define CERTRELAY_SINKCONF_H

#include "certrelay/config.h"
#include "certrelay/template.h"
#include "certrelay/webhook_format.h"

/* [sink.X] type = file */
struct crs_file_sink_config {
    char *directory;           /* required; created if missing */
    char *name_source;         /* the template text, default "{{request_id}}-{{event}}" */
    struct crs_template *name; /* compiled; rendered with CRS_ESCAPE_FILENAME */
    int write_json;            /* json = true (default) */
    int write_der;             /* der = true (default): .cer / .crl files */
};

extern const struct crs_sink_type crs_sink_type_file;

/* TLS settings shared by the webhook and email sinks (keys ca_file, client_cert, client_key,
 * insecure). Verification is on unless insecure is set. */
struct crs_tls_config {
    char *ca_file;     /* trust anchors (PEM bundle); NULL: the system's store */
    char *client_cert; /* client certificate (PEM; a .pfx/.p12 file with Schannel) */
    char *client_key;  /* its private key (PEM) when not inside client_cert */
    int insecure;      /* insecure = true: no peer or host name verification */
};

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

extern const struct crs_sink_type crs_sink_type_webhook;

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

extern const struct crs_sink_type crs_sink_type_email;

#endif
