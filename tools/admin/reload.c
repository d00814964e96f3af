/*
 * `certrelay reload` (what SIGHUP and `sc control CertRelay paramchange` do, with the broker's
 * verdict on the file in the reply) and `certrelay check-config [FILE]` (the broker's own parser,
 * run here, with no broker needed).
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/defaults.h"
#include "certrelay/fs.h"
#include "client.h"
#include "commands.h"
#include "config/config.h"

static void reload_usage(FILE *f)
{
    fprintf(f, "usage: certrelay reload [--config FILE | --pipe NAME] [--json]\n"
               "exit: 0 reloaded, 1 the file has an error (FILE:LINE: message; the running "
               "configuration is kept), 2 usage, 3 broker not running, 4 not authorized\n");
}

static int reload_print(json_t *res, int json)
{
    if (json)
        admin_print_json(res);
    else
        printf("reloaded %s\n", json_string_value(json_object_get(res, "config")));
    return ADMIN_EXIT_OK;
}

int tool_reload_main(int argc, char **argv)
{
    static const struct admin_command cmd = {"reload", reload_usage, NULL, reload_print};

    return admin_main(&cmd, argc, argv);
}

int tool_check_config_main(int argc, char **argv)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    char *path = NULL, *base = NULL;
    int rc;

    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "--help") == 0 || argv[1][0] == '-'))) {
        FILE *f = argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr;
        fprintf(f, "usage: certrelay check-config [FILE]\n"
                   "       FILE defaults to the service's certrelay.ini\n"
                   "exit: 0 valid, 1 invalid (FILE:LINE: message), 2 usage\n");
        return f == stdout ? ADMIN_EXIT_OK : ADMIN_EXIT_USAGE;
    }
    if (argc == 2) {
        path = crs_strdup(argv[1]);
    } else {
        base = crs_default_base_dir();
        path = base ? crs_path_join(base, "certrelay.ini") : NULL;
    }
    if (path == NULL) {
        fprintf(stderr, "certrelay check-config: out of memory\n");
        crs_free(base);
        return ADMIN_EXIT_FAILED;
    }
    rc = crs_config_load(path, &cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
    } else {
        printf("%s: OK (%zu sink%s)\n", path, cfg->nsinks, cfg->nsinks == 1 ? "" : "s");
    }
    crs_config_free(cfg);
    crs_free(path);
    crs_free(base);
    return rc == 0 ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILED;
}
