/*
 * `certrelay send-test --sink S`: the broker sends one clearly marked test event through the
 * sink's real path (driver, TLS, signature, template) and reports the outcome. Nothing is queued:
 * a failure is shown, not retried.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "commands.h"

static void sendtest_usage(FILE *f)
{
    fprintf(f, "usage: certrelay send-test --sink S [--config FILE | --pipe NAME] [--json]\n"
               "exit: 0 delivered, 1 not delivered (the reason is printed), 2 usage, 3 broker "
               "not running, 4 not authorized\n");
}

static int sendtest_params(const struct admin_command *c, int argc, char **argv, json_t *params)
{
    if (argc != 3 || strcmp(argv[1], "--sink") != 0)
        return ADMIN_EXIT_USAGE;
    return json_object_set_new(params, "sink", json_string(argv[2])) == 0 ? 0 : ADMIN_EXIT_FAILED;
}

static int sendtest_print(json_t *res, int json)
{
    const char *err = json_string_value(json_object_get(res, "error"));

    if (json)
        admin_print_json(res);
    else
        printf("sink %s: %s (status %lld%s%s) in %.3f s; test event %s\n",
               json_string_value(json_object_get(res, "sink")),
               json_string_value(json_object_get(res, "outcome")),
               (long long)json_integer_value(json_object_get(res, "status")),
               err && err[0] ? ", " : "", err ? err : "",
               json_real_value(json_object_get(res, "seconds")),
               json_string_value(json_object_get(res, "event_id")));
    return json_is_true(json_object_get(res, "ok")) ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILED;
}

int tool_send_test_main(int argc, char **argv)
{
    static const struct admin_command cmd = {"send-test", sendtest_usage, sendtest_params,
                                             sendtest_print};

    return admin_main(&cmd, argc, argv);
}
