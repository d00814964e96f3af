/*
 * certrelayd's Windows entry: the Service Control Manager's way in, and --console.
 */
#ifndef CERTRELAY_BROKER_WIN_SERVICE_H
#define CERTRELAY_BROKER_WIN_SERVICE_H

/*
 * Called first by main() on Windows.
 *
 *   certrelayd                          run as the service "CertRelay" (started by the SCM)
 *   certrelayd --console [--config F]   run in the foreground, logging to the console too
 *   certrelayd --help                   the Windows usage
 *
 * Returns the process exit status, or -1 when the arguments belong to the portable main
 * (--config, --check-config, --version), which then handles them as on Unix.
 */
int crs_platform_main(int argc, char **argv);

#endif
