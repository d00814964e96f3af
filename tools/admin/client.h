/*
 * The CLI's end of the admin channel (proto/certrelay.proto, AdminRequest/AdminReply) and what
 * the admin commands share: finding the broker (--config FILE or --pipe NAME), the exit codes,
 * and printing times and durations for people.
 *
 * Exit codes of every admin command (README, "Operate"):
 *   0  done
 *   1  the broker (or the file, for check-config) reported a failure: unknown event, invalid
 *      configuration, database error; the reason is printed on stderr
 *   2  usage error
 *   3  the broker is not running or not reachable (status still reports the spool)
 *   4  refused: not authorized to use the broker's pipe
 */
#ifndef CERTRELAY_TOOLS_ADMIN_CLIENT_H
#define CERTRELAY_TOOLS_ADMIN_CLIENT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define ADMIN_EXIT_OK          0
#define ADMIN_EXIT_FAILED      1
#define ADMIN_EXIT_USAGE       2
#define ADMIN_EXIT_NOT_RUNNING 3
#define ADMIN_EXIT_REFUSED     4

/* Where the broker is, from the options every admin command takes. */
struct admin_target {
    char *config_path; /* the file read, or NULL */
    char *pipe;
    char *spool_dir;
    int json; /* --json: print the broker's JSON instead of tables */
};

/*
 * Takes the shared options out of argv (--config FILE, --pipe NAME, --json), leaving the rest in
 * order (argv[0] kept); *argc is updated. Returns 0, or ADMIN_EXIT_USAGE after printing why.
 */
int admin_target_init(struct admin_target *t, int *argc, char **argv);
void admin_target_free(struct admin_target *t);

/*
 * Sends one request and waits for its reply. Returns an exit code: ADMIN_EXIT_OK with *result
 * the reply's JSON (json_decref it), or ADMIN_EXIT_FAILED / NOT_RUNNING / REFUSED after printing
 * the reason on stderr. params may be NULL.
 */
int admin_call(const struct admin_target *t, const char *command, json_t *params, json_t **result);

/*
 * The shape every admin command but status shares: --help, the shared options, the command's own
 * arguments into a params object (parse returns 0 or ADMIN_EXIT_USAGE, printing why), one call,
 * and the result printed by print (which gets t->json and returns the exit code; NULL prints the
 * JSON). usage is printed for --help (stdout) and usage errors (stderr).
 */
struct admin_command {
    const char *command;
    void (*usage)(FILE *f);
    int (*parse)(const struct admin_command *c, int argc, char **argv, json_t *params);
    int (*print)(json_t *res, int json);
};
int admin_main(const struct admin_command *c, int argc, char **argv);

/* "2026-11-21T18:04:07.123Z", or "-" for a negative time. */
void admin_fmt_time(int64_t unix_ms, char *out, size_t outlen);
/* "3d 4h", "12m 5s", "850ms". */
void admin_fmt_age(int64_t ms, char *out, size_t outlen);
/* Parses --since: an RFC 3339 time, or a duration back from now ("2h", "30m", "7d"). */
int admin_parse_since(const char *s, int64_t *unix_ms);
/* Prints v as indented JSON and a newline. */
void admin_print_json(json_t *v);

#endif
