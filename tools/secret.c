/*
 * `certrelay secret set FILE`: seals the secret read from standard input to this machine with
 * DPAPI (machine scope) and writes the blob to FILE, atomically, private to SYSTEM,
 * Administrators and the service. The broker's sinks read such a file wherever they take a
 * secret file (secret_file, bearer_token_file, password_file). One trailing line break is not
 * part of the secret; nothing read is ever echoed.
 *
 *   echo|set /p=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw| certrelay secret set C:\ProgramData\CertRelay\soc.secret
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#endif

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/secret.h"
#include "commands.h"

/* The largest secret accepted: far above any key, token or password. */
#define SECRET_MAX (64u * 1024u)

static void secret_usage(FILE *f)
{
    fprintf(f, "usage: certrelay secret set FILE\n\n"
               "Reads a secret from standard input and writes it to FILE sealed with DPAPI to\n"
               "this machine (Windows), for secret_file, bearer_token_file and password_file.\n");
}

static int secret_set(const char *path)
{
    uint8_t *plain = NULL;
    size_t len = 0, n;
    int rc;

    plain = crs_malloc(SECRET_MAX + 1);
    if (plain == NULL)
        return CRS_ENOMEM;
#ifdef _WIN32
    _setmode(_fileno(stdin), _O_BINARY);
#endif
    while ((n = fread(plain + len, 1, SECRET_MAX + 1 - len, stdin)) > 0) {
        len += n;
        if (len > SECRET_MAX)
            break;
    }
    if (len > SECRET_MAX) {
        fprintf(stderr, "certrelay secret: the secret is longer than %u bytes\n", SECRET_MAX);
        rc = CRS_ETOOBIG;
        goto cleanup;
    }
    if (len > 0 && plain[len - 1] == '\n')
        len--;
    if (len > 0 && plain[len - 1] == '\r')
        len--;
    if (len == 0) {
        fprintf(stderr, "certrelay secret: nothing on standard input\n");
        rc = CRS_EINVAL;
        goto cleanup;
    }
    rc = crs_secret_write_file(path, plain, len);
    if (rc == CRS_ENOTSUP)
        fprintf(stderr, "certrelay secret: DPAPI exists on Windows only; on this system keep the "
                        "secret in a file only the broker's account can read\n");
    else if (rc != 0)
        fprintf(stderr, "certrelay secret: cannot write %s: %s\n", path, crs_strerror(rc));
    else
        printf("certrelay secret: %s written, sealed to this machine\n", path);

cleanup:
    crs_secret_free(plain, SECRET_MAX + 1);
    return rc;
}

int tool_secret_main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        secret_usage(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "set") != 0) {
        secret_usage(stderr);
        return 2;
    }
    return secret_set(argv[2]) == 0 ? 0 : 1;
}
