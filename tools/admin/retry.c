/*
 * `certrelay retry` (dead or pending deliveries due now, with a fresh budget of attempts) and
 * `certrelay replay` (already delivered events delivered to one sink again).
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "commands.h"

static void retry_usage(FILE *f)
{
    fprintf(f, "usage: certrelay retry EVENT_ID... [--sink S] [--config FILE | --pipe NAME] "
               "[--json]\n"
               "       certrelay retry --sink S --dead [--since T] [...]\n"
               "exit: 0 done, 1 failure, 2 usage, 3 broker not running, 4 not authorized\n");
}

static void replay_usage(FILE *f)
{
    fprintf(f, "usage: certrelay replay --sink S --since T [--kind K] [--config FILE | --pipe "
               "NAME] [--json]\n"
               "       T: an RFC 3339 time or a duration back from now (30m, 2h, 7d)\n"
               "exit: 0 done, 1 failure, 2 usage, 3 broker not running, 4 not authorized\n");
}

/*
 * Parses retry's and replay's options into params: --sink S, --since T, --kind K, --dead, and
 * bare event ids (retry only). Returns 0 or ADMIN_EXIT_USAGE (printed).
 */
static int retry_params(const struct admin_command *c, int argc, char **argv, json_t *params)
{
    const char *cmd = c->command;
    int allow_ids = strcmp(cmd, "retry") == 0;
    json_t *ids = json_array();
    int i, rc = 0, dead = 0;

    if (ids == NULL || json_object_set_new(params, "event_ids", ids) != 0)
        return ADMIN_EXIT_FAILED;
    for (i = 1; i < argc && rc == 0; i++) {
        const char *opt = argv[i];
        int64_t since;

        if (strcmp(opt, "--dead") == 0) {
            dead = 1;
        } else if (strcmp(opt, "--sink") == 0 || strcmp(opt, "--kind") == 0 ||
                   strcmp(opt, "--since") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "certrelay %s: %s needs a value\n", cmd, opt);
                return ADMIN_EXIT_USAGE;
            }
            i++;
            if (strcmp(opt, "--since") != 0) {
                rc = json_object_set_new(params, opt + 2, json_string(argv[i]));
            } else if (admin_parse_since(argv[i], &since) != 0) {
                fprintf(stderr, "certrelay %s: --since %s: not a time or duration\n", cmd, argv[i]);
                return ADMIN_EXIT_USAGE;
            } else {
                rc = json_object_set_new(params, "since_ms", json_integer(since));
            }
        } else if (opt[0] != '-' && allow_ids) {
            rc = json_array_append_new(ids, json_string(opt));
        } else {
            fprintf(stderr, "certrelay %s: unexpected '%s'\n", cmd, opt);
            return ADMIN_EXIT_USAGE;
        }
    }
    if (rc != 0)
        return ADMIN_EXIT_FAILED;
    if (!allow_ids)
        return json_object_get(params, "sink") && json_object_get(params, "since_ms")
                   ? 0
                   : ADMIN_EXIT_USAGE;
    /* Either ids, or a whole sink's dead letters; never both, never neither. */
    if ((json_array_size(ids) > 0) == (dead != 0))
        return ADMIN_EXIT_USAGE;
    if (dead && json_object_get(params, "sink") == NULL)
        return ADMIN_EXIT_USAGE;
    if (dead && json_object_set_new(params, "dead", json_true()) != 0)
        return ADMIN_EXIT_FAILED;
    return 0;
}

static int retry_print(json_t *res, int json)
{
    json_t *missing = json_object_get(res, "not_found"), *id;
    size_t i;

    if (json) {
        admin_print_json(res);
    } else {
        printf("%lld deliveries due now\n",
               (long long)json_integer_value(json_object_get(res, "rows")));
        json_array_foreach(missing, i, id)
        {
            fprintf(stderr, "certrelay retry: no event %s in the queue\n", json_string_value(id));
        }
    }
    return json_array_size(missing) > 0 ? ADMIN_EXIT_FAILED : ADMIN_EXIT_OK;
}

int tool_retry_main(int argc, char **argv)
{
    static const struct admin_command cmd = {"retry", retry_usage, retry_params, retry_print};

    return admin_main(&cmd, argc, argv);
}

int tool_replay_main(int argc, char **argv)
{
    static const struct admin_command cmd = {"replay", replay_usage, retry_params, retry_print};

    return admin_main(&cmd, argc, argv);
}
