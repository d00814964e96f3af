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

int tool_send_test_main(int argc, char **argv)
{
    struct admin_target t;
    json_t *params = NULL, *res = NULL;
    int code;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        sendtest_usage(stdout);
        return ADMIN_EXIT_OK;
    }
    code = admin_target_init(&t, &argc, argv);
    if (code == 0 && (argc != 3 || strcmp(argv[1], "--sink") != 0)) {
        sendtest_usage(stderr);
        code = ADMIN_EXIT_USAGE;
    }
    if (code == 0) {
        params = json_pack("{ss}", "sink", argv[2]);
        code = params ? admin_call(&t, "send-test", params, &res) : ADMIN_EXIT_FAILED;
    }
    if (code == 0) {
        const char *err = json_string_value(json_object_get(res, "error"));
        if (t.json)
            admin_print_json(res);
        else
            printf("sink %s: %s (status %lld%s%s) in %.3f s; test event %s\n",
                   json_string_value(json_object_get(res, "sink")),
                   json_string_value(json_object_get(res, "outcome")),
                   (long long)json_integer_value(json_object_get(res, "status")),
                   err && err[0] ? ", " : "", err ? err : "",
                   json_real_value(json_object_get(res, "seconds")),
                   json_string_value(json_object_get(res, "event_id")));
        if (!json_is_true(json_object_get(res, "ok")))
            code = ADMIN_EXIT_FAILED;
    }
    json_decref(params);
    json_decref(res);
    admin_target_free(&t);
    return code;
}
