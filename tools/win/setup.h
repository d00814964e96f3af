/*
 * What `certrelay install`, `uninstall`, `activate` and `deactivate` share (Windows only).
 *
 * Each command is a list of idempotent steps. A step looks at the system first and either changes
 * it or says it is already as wanted, so a second run changes nothing and says so:
 *
 *   service CertRelay: created (LocalSystem, automatic start)
 *   service CertRelay: description already set
 *   ...
 *   certrelay install: 4 changes
 *
 * The files of the commands: setup.c (this header's helpers: reporting, elevation, paths),
 * service_setup.c (the CertRelay service), ca_modules.c (the CA's active exit modules),
 * datadir.c (%ProgramData%\CertRelay and the configuration), install.c (the two commands that
 * run the others in order, and the COM and Event Log registration).
 */
#ifndef CERTRELAY_TOOLS_WIN_SETUP_H
#define CERTRELAY_TOOLS_WIN_SETUP_H

#include <windows.h>

#include "certrelay/alloc.h"
#include "certrelay/printf.h"

#define SETUP_SERVICE_NAME    L"CertRelay"
#define SETUP_VIRTUAL_ACCOUNT L"NT SERVICE\\CertRelay"
#define SETUP_PROGID_EXIT     L"CertRelay.Exit"
#define SETUP_BROKER_EXE      L"certrelayd.exe"
#define SETUP_EXIT_DLL        L"certrelay_exit.dll"
#define SETUP_EXAMPLE_INI     L"certrelay.example.ini"
#define SETUP_CONFIG_INI      L"certrelay.ini"
#define SETUP_CONFIG_INI_A    "certrelay.ini"

/* Paths are capped at this many UTF-16 units, terminator included. */
#define SETUP_PATH_MAX 1024

/* The tally of one command's steps. */
struct setup_report {
    const char *command; /* "install", ... */
    int changes;
    int failures;
};

/* One line per step: "  <subject>: <what happened>". done counts a change, failed a failure. */
void setup_done(struct setup_report *r, const char *fmt, ...)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)));
void setup_already(struct setup_report *r, const char *fmt, ...)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)));
void setup_failed(struct setup_report *r, const char *fmt, ...)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)));
void setup_note(struct setup_report *r, const char *fmt, ...)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)));
/* The closing line; returns the command's exit status (0, or 1 after a failed step). */
int setup_finish(struct setup_report *r);

/* The message of a Win32 error code, without the trailing newline, in a static buffer. */
const char *setup_strerror(DWORD err);

/* 1 when this process may administer the machine (member of BUILTIN\Administrators, elevated);
 * otherwise prints why not, with what to do, and returns 0. */
int setup_require_admin(const char *command);

/* The folder holding certrelay.exe (and beside it certrelayd.exe and certrelay_exit.dll), and a
 * file in it. 0 or a Win32 error. */
DWORD setup_install_dir(WCHAR *out, size_t cap);
DWORD setup_install_file(const WCHAR *name, WCHAR *out, size_t cap);
/* %ProgramData%\CertRelay (the known folder, as the service sees it). 0 or a Win32 error. */
DWORD setup_data_dir(WCHAR *out, size_t cap);

/* Joins dir and name with a backslash; 0 or ERROR_BUFFER_OVERFLOW. */
DWORD setup_path_join(WCHAR *out, size_t cap, const WCHAR *dir, const WCHAR *name);

/* Options shared by several commands: "--name VALUE" or "--name=VALUE". Returns the value when
 * argv[*i] is that option (advancing *i past a separate value), NULL otherwise; *missing is set
 * when the option is there without a value. */
const char *setup_option(int argc, char **argv, int *i, const char *name, int *missing);
/* "1", "yes", "true" (an MSI property that is set) are true; "", "0", "no", "false" false.
 * -1 for anything else. */
int setup_bool(const char *value);

/* ------------------------------------------------------------------------------------------ */
/* The steps, each reporting through r                                                          */
/* ------------------------------------------------------------------------------------------ */

enum setup_account { SETUP_ACCOUNT_SYSTEM, SETUP_ACCOUNT_VIRTUAL };

/* service_setup.c. create: create the service when missing (a package creates it itself).
 * Without account_given an existing service keeps its account. Returns the service's account. */
enum setup_account setup_service_install(struct setup_report *r, enum setup_account account,
                                         int account_given, int create);
void setup_service_start(struct setup_report *r);
/* Stops the service (waiting for its process to exit) and, with delete, deletes it. */
void setup_service_remove(struct setup_report *r, int delete);
/* The service's own SID (S-1-5-80-...), which names its virtual account in ACLs, as a string.
 * 0 or a Win32 error. */
DWORD setup_service_sid(WCHAR *out, size_t cap);

/* ca_modules.c. ca: the CA's key name, or NULL for the machine's active CA. Without a CA on this
 * machine, nothing is changed and that is said (not a failure unless required). */
void setup_ca_activate(struct setup_report *r, const WCHAR *ca, int required);
void setup_ca_deactivate(struct setup_report *r, const WCHAR *ca, int required);
void setup_ca_restart_note(struct setup_report *r, int loading);

/* datadir.c */
void setup_data_dirs(struct setup_report *r, enum setup_account account);
void setup_config(struct setup_report *r, const WCHAR *config);
void setup_data_remove(struct setup_report *r, int purge);

#endif
