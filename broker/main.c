/*
 * certrelayd: the broker as a console program.
 *
 *   certrelayd --config FILE         run in the foreground until SIGINT/SIGTERM
 *   certrelayd --check-config FILE   validate FILE: "FILE: ok" (exit 0) or "FILE:LINE: message"
 *   certrelayd                       run on the built-in default configuration (the demo)
 *
 * On Windows main() first hands over to crs_platform_main (broker/win/service.c): without
 * arguments certrelayd runs as the service "CertRelay", with --console in the foreground.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "config/config.h"
#include "certrelay/log.h"
#include "sinks/file/settings.h"
#include "certrelay/version.h"
#ifdef _WIN32
#include "win/service.h"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: certrelayd [--config FILE [--salvage]]\n"
            "       certrelayd --check-config FILE\n"
            "       certrelayd --version | --help\n"
            "\n"
            "Receives certificate services events from the CertRelay exit module, stores them\n"
            "durably and delivers them to the configured sinks (file drop, webhook, email).\n"
            "\n"
            "  --config FILE        run in the foreground with the INI configuration FILE\n"
            "  --salvage            run even though the queue database is damaged (its check\n"
            "                       at start fails), keeping a copy of a damaged log\n"
            "  --check-config FILE  validate FILE and exit (0 when valid)\n"
            "  --version            print the version and exit\n"
            "  --help               print this help and exit\n"
            "\n"
            "Without --config the broker runs on a built-in demo configuration below\n"
            "$CERTRELAY_HOME (or $XDG_RUNTIME_DIR/certrelay, or /tmp/certrelay-UID): socket\n"
            "certrelay.sock, queue in state/, spool in spool/, and a file sink writing to out/.\n");
}

static int check_config(const char *path)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];

    if (crs_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    crs_config_free(cfg);
    printf("%s: ok\n", path);
    return 0;
}

static int run(const char *path, int salvage)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    int status;

    if (path != NULL) {
        if (crs_config_load(path, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    } else {
        if (crs_broker_default_config(&cfg) != 0)
            return 1;
        crs_info("no --config given: running the built-in default configuration");
        crs_info("  socket %s", cfg->listen);
        crs_info("  queue  %s", cfg->state_dir);
        crs_info("  spool  %s", cfg->spool_dir);
        if (cfg->nsinks > 0 && cfg->sinks[0].typed != NULL)
            crs_info("  files  %s (sink \"%s\")",
                     ((const struct crs_file_sink_config *)cfg->sinks[0].typed)->directory,
                     cfg->sinks[0].name);
    }
    if (salvage)
        cfg->salvage = 1;
    status = crs_broker_run(cfg, NULL) == 0 ? 0 : 1;
    crs_config_free(cfg);
    return status;
}

int main(int argc, char **argv)
{
#ifdef _WIN32
    /* The service (no arguments), --console and the Windows --help; -1 leaves the rest to us. */
    int status = crs_platform_main(argc, argv);
    if (status >= 0)
        return status;
#endif
    if (argc == 1)
        return run(NULL, 0);
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("certrelayd %s\n", CRS_VERSION);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return run(argv[2], 0);
    if (argc == 4 && strcmp(argv[1], "--config") == 0 && strcmp(argv[3], "--salvage") == 0)
        return run(argv[2], 1);
    if (argc == 3 && strcmp(argv[1], "--check-config") == 0)
        return check_config(argv[2]);
    usage(stderr);
    return 2;
}
