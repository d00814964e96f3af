/*
 * Default locations on Unix, where CertRelay runs for development and tests: everything sits
 * below one base directory so that parallel tests, each with its own CERTRELAY_HOME, never meet.
 *
 *   base   $CERTRELAY_HOME, else $XDG_RUNTIME_DIR/certrelay, else /tmp/certrelay-<uid>
 *   pipe   <base>/certrelay.sock
 *   spool  <base>/spool
 */
#include <stdlib.h>
#include <unistd.h>
#include "certrelay/alloc.h"
#include "certrelay/defaults.h"

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}

char *crs_default_base_dir(void)
{
    const char *v;

    v = nonempty_env("CERTRELAY_HOME");
    if (v != NULL)
        return crs_strdup(v);
    v = nonempty_env("XDG_RUNTIME_DIR");
    if (v != NULL)
        return crs_asprintf("%s/certrelay", v);
    return crs_asprintf("/tmp/certrelay-%lu", (unsigned long)getuid());
}

/* Returns <base>/<name> as a fresh string, or NULL when out of memory. */
static char *below_base(const char *name)
{
    char *base, *out;

    base = crs_default_base_dir();
    if (base == NULL)
        return NULL;
    out = crs_asprintf("%s/%s", base, name);
    crs_free(base);
    return out;
}

char *crs_default_pipe(void)
{
    return below_base("certrelay.sock");
}

char *crs_default_spool_dir(void)
{
    return below_base("spool");
}
