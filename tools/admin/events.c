/*
 * `certrelay events` (a filtered listing of the queue, newest first) and `certrelay show
 * EVENT_ID` (the JSON document and each sink's delivery: state, attempts, status, error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "commands.h"

static void events_usage(FILE *f)
{
    fprintf(f, "usage: certrelay events [--sink S] [--state pending|dead|delivered] [--kind K]\n"
               "                        [--since T] [--request-id N] [--serial HEX] [--limit N]\n"
               "                        [--config FILE | --pipe NAME] [--json]\n"
               "       T: an RFC 3339 time or a duration back from now (30m, 2h, 7d)\n"
               "exit: 0 done, 1 failure, 2 usage, 3 broker not running, 4 not authorized\n");
}

static void show_usage(FILE *f)
{
    fprintf(f, "usage: certrelay show EVENT_ID [--config FILE | --pipe NAME] [--json]\n"
               "exit: 0 done, 1 failure (no such event), 2 usage, 3 broker not running, "
               "4 not authorized\n");
}

/* Parses the filters into params; 0 or ADMIN_EXIT_USAGE. */
static int events_params(const struct admin_command *c, int argc, char **argv, json_t *params)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        int rc = 0;

        if (val == NULL) {
            fprintf(stderr, "certrelay events: unexpected '%s'\n", opt);
            return ADMIN_EXIT_USAGE;
        }
        i++;
        if (strcmp(opt, "--sink") == 0) {
            rc = json_object_set_new(params, "sink", json_string(val));
        } else if (strcmp(opt, "--state") == 0) {
            rc = json_object_set_new(params, "state", json_string(val));
        } else if (strcmp(opt, "--kind") == 0) {
            rc = json_object_set_new(params, "kind", json_string(val));
        } else if (strcmp(opt, "--serial") == 0) {
            rc = json_object_set_new(params, "serial", json_string(val));
        } else if (strcmp(opt, "--since") == 0) {
            int64_t since;
            if (admin_parse_since(val, &since) != 0) {
                fprintf(stderr, "certrelay events: --since %s: not a time or duration\n", val);
                return ADMIN_EXIT_USAGE;
            }
            rc = json_object_set_new(params, "since_ms", json_integer(since));
        } else if (strcmp(opt, "--request-id") == 0 || strcmp(opt, "--limit") == 0) {
            long long n = strtoll(val, &end, 10);
            if (end == val || *end != '\0') {
                fprintf(stderr, "certrelay events: %s %s: not a number\n", opt, val);
                return ADMIN_EXIT_USAGE;
            }
            rc = json_object_set_new(params, opt[2] == 'r' ? "request_id" : "limit",
                                     json_integer(n));
        } else {
            fprintf(stderr, "certrelay events: unknown option '%s'\n", opt);
            return ADMIN_EXIT_USAGE;
        }
        if (rc != 0)
            return ADMIN_EXIT_FAILED;
    }
    return 0;
}

static int events_print(json_t *res, int json)
{
    json_t *ev, *d;
    size_t i, j;
    char when[40];

    if (json) {
        admin_print_json(res);
        return ADMIN_EXIT_OK;
    }
    printf("%-36s %-16s %-24s %10s  %-20s %s\n", "EVENT ID", "KIND", "RECEIVED", "REQUEST",
           "SERIAL", "DELIVERIES");
    json_array_foreach(json_object_get(res, "events"), i, ev)
    {
        json_t *rid = json_object_get(ev, "request_id");
        const char *serial = json_string_value(json_object_get(ev, "serial"));
        char req[24];

        admin_fmt_time(json_integer_value(json_object_get(ev, "received_ms")), when, sizeof(when));
        if (json_is_integer(rid))
            snprintf(req, sizeof(req), "%lld", (long long)json_integer_value(rid));
        else
            snprintf(req, sizeof(req), "-");
        printf("%-36s %-16s %-24s %10s  %-20.20s ",
               json_string_value(json_object_get(ev, "event_id")),
               json_string_value(json_object_get(ev, "kind")), when, req, serial ? serial : "-");
        json_array_foreach(json_object_get(ev, "deliveries"), j, d)
        {
            printf("%s%s=%s", j ? " " : "", json_string_value(json_object_get(d, "sink")),
                   json_string_value(json_object_get(d, "state")));
        }
        printf("\n");
    }
    return ADMIN_EXIT_OK;
}

int tool_events_main(int argc, char **argv)
{
    static const struct admin_command cmd = {"events", events_usage, events_params, events_print};

    return admin_main(&cmd, argc, argv);
}

static int show_print(json_t *res, int json)
{
    json_t *d;
    size_t i;
    char when[40], next[40];

    if (json) {
        admin_print_json(res);
        return ADMIN_EXIT_OK;
    }
    admin_print_json(json_object_get(res, "event"));
    admin_fmt_time(json_integer_value(json_object_get(res, "received_ms")), when, sizeof(when));
    printf("\nreceived: %s\n\n%-16s %-10s %8s %7s %-24s %-24s %s\n", when, "SINK", "STATE",
           "ATTEMPTS", "STATUS", "UPDATED", "NEXT ATTEMPT", "LAST ERROR");
    json_array_foreach(json_object_get(res, "deliveries"), i, d)
    {
        json_t *na = json_object_get(d, "next_attempt_ms");
        const char *err = json_string_value(json_object_get(d, "last_error"));

        admin_fmt_time(json_integer_value(json_object_get(d, "updated_ms")), when, sizeof(when));
        admin_fmt_time(json_is_integer(na) ? json_integer_value(na) : -1, next, sizeof(next));
        printf("%-16s %-10s %8lld %7lld %-24s %-24s %s\n",
               json_string_value(json_object_get(d, "sink")),
               json_string_value(json_object_get(d, "state")),
               (long long)json_integer_value(json_object_get(d, "attempts")),
               (long long)json_integer_value(json_object_get(d, "last_status")), when, next,
               err ? err : "-");
    }
    return ADMIN_EXIT_OK;
}

static int show_params(const struct admin_command *c, int argc, char **argv, json_t *params)
{
    if (argc != 2 || argv[1][0] == '-')
        return ADMIN_EXIT_USAGE;
    return json_object_set_new(params, "event_id", json_string(argv[1])) == 0 ? 0
                                                                              : ADMIN_EXIT_FAILED;
}

int tool_show_main(int argc, char **argv)
{
    static const struct admin_command cmd = {"show", show_usage, show_params, show_print};

    return admin_main(&cmd, argc, argv);
}
