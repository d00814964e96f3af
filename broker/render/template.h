/*
 * `{{field}}` templates, shared by file names, email subjects and bodies, and webhook texts.
 * A template is compiled once (when the configuration is loaded, so an unknown field name is a
 * configuration error with a line number) and rendered per event with an escaping mode that suits
 * the destination. Field names: see crs_template_fields() and docs in README.
 */
#ifndef CERTRELAY_TEMPLATE_H
#define CERTRELAY_TEMPLATE_H

#include <stddef.h>
#include "certrelay.pb-c.h"

enum crs_escape {
    CRS_ESCAPE_NONE = 0, /* plain text bodies: control characters other than \n and \t removed */
    CRS_ESCAPE_FILENAME, /* each value through crs_sanitize_filename */
    CRS_ESCAPE_HTML,     /* & < > " ' escaped */
    CRS_ESCAPE_HEADER    /* one line: CR, LF and every other control character replaced by ' ' */
};

/* Upper bound on a rendered template, so a hostile field cannot make an unbounded string. */
#define CRS_TEMPLATE_MAX_OUTPUT (1024u * 1024u)

struct crs_template;

/* Compiles src. On error returns CRS_ETEMPLATE and writes a sentence to err
 * ("unknown field 'foo'", "unterminated '{{'"). */
int crs_template_compile(const char *src, struct crs_template **out, char *err, size_t errlen);
/* Renders into a fresh NUL-terminated string (crs_free it). */
int crs_template_render(const struct crs_template *t, const Certrelay__V1__Event *ev,
                        enum crs_escape esc, char **out);
void crs_template_free(struct crs_template *t);

/*
 * The field values of one event, computed once and shared by every renderer: a sink's templates
 * and the webhook chat summaries. Values are valid UTF-8, unescaped, "" when absent.
 */
struct crs_fields;
int crs_fields_new(const Certrelay__V1__Event *ev, struct crs_fields **out);
/* The value of a field by name; "" for an unknown name. */
const char *crs_fields_get(const struct crs_fields *f, const char *name);
void crs_fields_free(struct crs_fields *f);
/* crs_template_render with the fields already computed (several templates, one event). */
int crs_template_render_fields(const struct crs_template *t, const struct crs_fields *f,
                               enum crs_escape esc, char **out);
/* The NULL-terminated list of field names a template may use. */
const char *const *crs_template_fields(void);
/* The value of one field for an event, unescaped, as a fresh string ("" when absent).
 * CRS_ENOENT for an unknown field. */
int crs_template_field_value(const char *field, const Certrelay__V1__Event *ev, char **out);

#endif
