/*
 * Where CertRelay's pieces meet when nothing is configured (lib/unix/defaults.c,
 * lib/win/defaults.c): the stub, the broker and the tools all use these.
 */
#ifndef CERTRELAY_DEFAULTS_H
#define CERTRELAY_DEFAULTS_H

/* Platform defaults: \\.\pipe\CertRelay and %ProgramData%\CertRelay\{state,spool,logs} on
 * Windows; on Unix below $XDG_RUNTIME_DIR or /tmp (documented in README). Fresh strings. */
char *crs_default_pipe(void);
char *crs_default_base_dir(void);
char *crs_default_spool_dir(void);

/* The stub's whole-call bound (registry TimeoutMs, crs_stub_options.timeout_ms, simulate's
 * --timeout-ms) when nothing sets it. */
#define CRS_DEFAULT_STUB_TIMEOUT_MS 2000u

#endif
