/*
 * Configuration of the email sink ([sink.NAME] type = email). Delivery lives apart, in
 * driver.c; this file only turns keys into struct crs_email_sink_config.
 *
 *   [sink.pki-team]
 *   type               = email
 *   url                = smtp://mail.example.com:587   ; or smtps://mail.example.com:465
 *   starttls           = required                      ; | opportunistic | off (smtp:// only)
 *   username           = certrelay
 *   password_file      = C:\ProgramData\CertRelay\smtp-password.txt
 *   from               = CertRelay <certrelay@example.com>
 *   to                 = pki-team@example.com, audit@example.com
 *   cc                 = ...
 *   bcc                = ...
 *   to_requester       = false
 *   subject            = [{{ca}}] {{kind_title}}: {{common_name}}
 *   body_file          = C:\ProgramData\CertRelay\mail.txt
 *   html_body_file     = C:\ProgramData\CertRelay\mail.html
 *   attach_certificate = true
 *   ca_file / client_cert / client_key / insecure      ; TLS, as for webhooks
 *
 * Template files are read and compiled here, so an unknown {{field}} in them is a configuration
 * error reported at load time. Addresses are checked here too: only plain addresses are accepted,
 * which keeps every SMTP command and header built from them well-formed.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "sinks/email/message.h"
#include "sinks/email/settings.h"
#include "sinks/sink.h"
#include "render/template.h"
#include "sinks/tls.h"

/* Upper bounds that keep a header line well under SMTP's 998 characters. */
#define EMAIL_RECIPIENTS_MAX    50u
#define EMAIL_TEMPLATE_FILE_MAX (256u * 1024u)
#define EMAIL_SUBJECT_MAX       512u

static const char *const email_schemes[] = {"smtp://", "smtps://", NULL};

static int email_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return CRS_ECONFIG;
}

static int email_init(void **typed)
{
    struct crs_email_sink_config *ec;

    if (typed == NULL)
        return CRS_EINVAL;
    *typed = NULL;
    ec = crs_calloc(1, sizeof(*ec));
    if (ec == NULL)
        return CRS_ENOMEM;
    ec->starttls = CRS_STARTTLS_REQUIRED;
    *typed = ec;
    return 0;
}

static void mailboxes_free(struct crs_mailbox *v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++) {
        crs_free(v[i].display);
        crs_free(v[i].addr);
    }
    crs_free(v);
}

/* Parses a comma-separated list of mailboxes, replacing *list. */
static int email_set_list(struct crs_mailbox **list, size_t *count, const char *value, char *err,
                          size_t errlen)
{
    struct crs_mailbox *v = NULL;
    char **items = NULL;
    size_t n = 0, i;
    int rc;

    if (strchr(value, '\n') != NULL)
        return email_error(err, errlen, "takes one line");
    rc = crs_split_list(value, &items, &n);
    if (rc != 0)
        return rc == CRS_ENOMEM ? CRS_ENOMEM : email_error(err, errlen, "bad address list");
    if (n == 0) {
        rc = email_error(err, errlen, "no address given");
        goto cleanup;
    }
    if (n > EMAIL_RECIPIENTS_MAX) {
        rc = email_error(err, errlen, "too many addresses (at most 50)");
        goto cleanup;
    }
    v = crs_calloc(n, sizeof(*v));
    if (v == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        char msg[200];

        rc = crs_mail_mailbox_parse(items[i], &v[i].display, &v[i].addr, msg, sizeof(msg));
        if (rc == CRS_ENOMEM)
            goto cleanup;
        if (rc != 0) {
            /* Values are not echoed in messages (config.h); the position finds the entry. */
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "address %zu of the list: %s", i + 1, msg);
            rc = CRS_ECONFIG;
            goto cleanup;
        }
    }
    mailboxes_free(*list, *count);
    *list = v;
    *count = n;
    v = NULL;
    rc = 0;

cleanup:
    mailboxes_free(v, n);
    crs_strv_free(items);
    return rc;
}

static int email_set_from(struct crs_email_sink_config *ec, const char *value, char *err,
                          size_t errlen)
{
    struct crs_mailbox mb = {NULL, NULL};
    int rc;

    if (strchr(value, '\n') != NULL)
        return email_error(err, errlen, "takes one line");
    if (strchr(value, ',') != NULL)
        return email_error(err, errlen, "takes one address");
    rc = crs_mail_mailbox_parse(value, &mb.display, &mb.addr, err, errlen);
    if (rc != 0)
        return rc == CRS_ENOMEM ? CRS_ENOMEM : CRS_ECONFIG;
    crs_free(ec->from.display);
    crs_free(ec->from.addr);
    ec->from = mb;
    return 0;
}

/* Compiles src into *t (replacing it); the message names what the template came from. */
static int email_compile(const char *what, const char *src, struct crs_template **t, char *err,
                         size_t errlen)
{
    struct crs_template *nt = NULL;
    char msg[200] = "";
    int rc;

    rc = crs_template_compile(src, &nt, msg, sizeof(msg));
    if (rc == CRS_ENOMEM)
        return CRS_ENOMEM;
    if (rc != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", what, msg[0] ? msg : crs_strerror(rc));
        return CRS_ECONFIG;
    }
    crs_template_free(*t);
    *t = nt;
    return 0;
}

/* Reads a template file now, so its errors carry the line of the key that names it. */
static int email_set_template_file(char **path, struct crs_template **t, const char *value,
                                   char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char what[32];
    int rc;

    rc = crs__conf_string(path, value, err, errlen);
    if (rc != 0)
        return rc;
    rc = crs_fs_read_all(value, EMAIL_TEMPLATE_FILE_MAX, &data, &len);
    if (rc == CRS_ENOMEM)
        return rc;
    if (rc != 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cannot read the template file: %s", crs_strerror(rc));
        return CRS_ECONFIG;
    }
    if (memchr(data, '\0', len) != NULL) {
        crs_free(data);
        return email_error(err, errlen, "the template file holds a NUL byte (not a text file?)");
    }
    snprintf(what, sizeof(what), "in the template file");
    rc = email_compile(what, (const char *)data, t, err, errlen);
    crs_free(data);
    return rc;
}

static int email_set(void *typed, const char *key, const char *value, char *err, size_t errlen)
{
    struct crs_email_sink_config *ec = typed;
    int rc;

    if (ec == NULL || key == NULL || value == NULL)
        return CRS_EINVAL;
    if (strcmp(key, "url") == 0) {
        rc = crs__conf_url_check(value, email_schemes, err, errlen);
        if (rc < 0)
            return rc;
        ec->implicit_tls = rc == 1;
        return crs__conf_string(&ec->url, value, err, errlen);
    }
    if (strcmp(key, "starttls") == 0) {
        if (strcmp(value, "required") == 0)
            ec->starttls = CRS_STARTTLS_REQUIRED;
        else if (strcmp(value, "opportunistic") == 0)
            ec->starttls = CRS_STARTTLS_OPPORTUNISTIC;
        else if (strcmp(value, "off") == 0)
            ec->starttls = CRS_STARTTLS_OFF;
        else
            return email_error(err, errlen, "expected required, opportunistic or off");
        return 0;
    }
    if (strcmp(key, "username") == 0)
        return crs__conf_string(&ec->username, value, err, errlen);
    if (strcmp(key, "password_file") == 0)
        return crs__conf_string(&ec->password_file, value, err, errlen);
    if (strcmp(key, "from") == 0)
        return email_set_from(ec, value, err, errlen);
    if (strcmp(key, "to") == 0)
        return email_set_list(&ec->to, &ec->nto, value, err, errlen);
    if (strcmp(key, "cc") == 0)
        return email_set_list(&ec->cc, &ec->ncc, value, err, errlen);
    if (strcmp(key, "bcc") == 0)
        return email_set_list(&ec->bcc, &ec->nbcc, value, err, errlen);
    if (strcmp(key, "to_requester") == 0)
        return crs__conf_bool(&ec->to_requester, value, err, errlen);
    if (strcmp(key, "attach_certificate") == 0)
        return crs__conf_bool(&ec->attach_certificate, value, err, errlen);
    if (strcmp(key, "subject") == 0) {
        if (strlen(value) > EMAIL_SUBJECT_MAX)
            return email_error(err, errlen, "longer than 512 bytes");
        rc = crs__conf_string(&ec->subject_source, value, err, errlen);
        return rc != 0 ? rc : email_compile("subject", value, &ec->subject, err, errlen);
    }
    if (strcmp(key, "body_file") == 0)
        return email_set_template_file(&ec->body_file, &ec->body, value, err, errlen);
    if (strcmp(key, "html_body_file") == 0)
        return email_set_template_file(&ec->html_body_file, &ec->html_body, value, err, errlen);
    return crs__tls_config_set(&ec->tls, key, value, err, errlen);
}

static int email_finish(void *typed, struct crs_sink_config *sc, char *err, size_t errlen)
{
    struct crs_email_sink_config *ec = typed;

    if (ec == NULL || sc == NULL)
        return CRS_EINVAL;
    if (ec->url == NULL)
        return email_error(err, errlen, "missing required key 'url' (smtp:// or smtps://)");
    if (ec->from.addr == NULL)
        return email_error(err, errlen, "missing required key 'from'");
    if (ec->nto + ec->ncc + ec->nbcc == 0 && !ec->to_requester)
        return email_error(err, errlen, "no recipient: set to, cc or bcc (or to_requester = true)");
    if (ec->nto + ec->ncc + ec->nbcc > EMAIL_RECIPIENTS_MAX)
        return email_error(err, errlen, "too many recipients in to, cc and bcc (at most 50)");
    if (ec->implicit_tls && ec->starttls != CRS_STARTTLS_REQUIRED)
        return email_error(err, errlen,
                           "starttls applies to smtp:// only: smtps:// is TLS from the first byte");
    if ((ec->username == NULL) != (ec->password_file == NULL))
        return email_error(err, errlen, "username and password_file go together");
    return crs__tls_config_finish(&ec->tls, err, errlen);
}

static void email_free(void *typed)
{
    struct crs_email_sink_config *ec = typed;

    if (ec == NULL)
        return;
    crs_free(ec->url);
    crs_free(ec->username);
    crs_free(ec->password_file);
    crs__tls_config_free(&ec->tls);
    crs_free(ec->from.display);
    crs_free(ec->from.addr);
    mailboxes_free(ec->to, ec->nto);
    mailboxes_free(ec->cc, ec->ncc);
    mailboxes_free(ec->bcc, ec->nbcc);
    crs_free(ec->subject_source);
    crs_template_free(ec->subject);
    crs_free(ec->body_file);
    crs_template_free(ec->body);
    crs_free(ec->html_body_file);
    crs_template_free(ec->html_body);
    crs_free(ec);
}

const struct crs_sink_settings crs_email_settings = {
    .init = email_init,
    .set = email_set,
    .finish = email_finish,
    .free = email_free,
};
