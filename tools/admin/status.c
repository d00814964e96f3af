/*
 * `certrelay status`: the broker, each sink's queue, the spool and the database, as a table or
 * (--json) as the broker's document. When the broker is not running it says so, still counts
 * the spool files waiting for it, and exits 3.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/fs.h"
#include "certrelay/spool.h"
#include "client.h"
#include "commands.h"

static void status_usage(FILE *f)
{
    fprintf(f, "usage: certrelay status [--config FILE | --pipe NAME] [--json]\n"
               "exit: 0 running, 1 failure, 2 usage, 3 broker not running, 4 not authorized\n");
}

static json_int_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void status_print(json_t *res)
{
    json_t *broker = json_object_get(res, "broker"), *db = json_object_get(res, "database");
    json_t *sinks = json_object_get(res, "sinks"), *s;
    char when[40], age[40];
    size_t i;

    admin_fmt_age(jint(broker, "uptime_ms"), age, sizeof(age));
    printf("broker:    certrelayd %s, up %s\n",
           json_string_value(json_object_get(broker, "version")), age);
    printf("config:    %s\n", json_is_string(json_object_get(broker, "config"))
                                  ? json_string_value(json_object_get(broker, "config"))
                                  : "(built-in default)");
    printf("listen:    %s\n", json_string_value(json_object_get(broker, "listen")));
    if (json_is_integer(json_object_get(res, "spool_files")))
        printf("spool:     %lld files waiting in %s\n", (long long)jint(res, "spool_files"),
               json_string_value(json_object_get(broker, "spool_dir")));
    printf("database:  %lld bytes (%lld free for reuse), %lld events, %lld deliveries\n\n",
           (long long)jint(db, "bytes"), (long long)jint(db, "free_bytes"),
           (long long)jint(db, "events"), (long long)jint(db, "deliveries"));
    printf("%-16s %-8s %9s %9s %9s %9s %12s  %s\n", "SINK", "TYPE", "PENDING", "IN-FLIGHT",
           "DELIV-24H", "DEAD", "OLDEST", "LAST ERROR");
    json_array_foreach(sinks, i, s)
    {
        json_t *oldest = json_object_get(s, "oldest_pending_age_ms");
        const char *err = json_string_value(json_object_get(s, "last_error"));

        admin_fmt_age(json_is_integer(oldest) ? json_integer_value(oldest) : -1, age, sizeof(age));
        printf("%-16s %-8s %9lld %9lld %9lld %9lld %12s  ",
               json_string_value(json_object_get(s, "name")),
               json_string_value(json_object_get(s, "type")), (long long)jint(s, "pending"),
               (long long)jint(s, "in_flight"), (long long)jint(s, "delivered_24h"),
               (long long)jint(s, "dead"), age);
        if (err != NULL) {
            admin_fmt_time(jint(s, "last_error_ms"), when, sizeof(when));
            printf("%s: %s\n", when, err);
        } else {
            printf("-\n");
        }
    }
}

int tool_status_main(int argc, char **argv)
{
    struct admin_target t;
    json_t *res = NULL;
    int code;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        status_usage(stdout);
        return ADMIN_EXIT_OK;
    }
    code = admin_target_init(&t, &argc, argv);
    if (code == 0 && argc != 1) {
        status_usage(stderr);
        code = ADMIN_EXIT_USAGE;
    }
    if (code != 0)
        goto cleanup;
    code = admin_call(&t, "status", NULL, &res);
    if (code == ADMIN_EXIT_NOT_RUNNING) {
        /* What is waiting for the broker is still worth knowing. */
        char **files = NULL;
        size_t n = 0;
        int rc = crs_fs_list(t.spool_dir, CRS_SPOOL_SUFFIX, &files, &n);
        crs_fs_list_free(files);
        if (t.json) {
            json_t *doc = json_pack("{sbsssI}", "running", 0, "spool_dir", t.spool_dir,
                                    "spool_files", (json_int_t)(rc == 0 ? (long long)n : -1));
            if (doc != NULL)
                admin_print_json(doc);
            json_decref(doc);
        } else {
            printf("broker:    not running\n");
            if (rc == 0)
                printf("spool:     %zu files waiting in %s\n", n, t.spool_dir);
            else
                printf("spool:     %s cannot be read\n", t.spool_dir);
        }
        goto cleanup;
    }
    if (code != 0)
        goto cleanup;
    if (json_object_set_new(res, "running", json_true()) != 0) {
        code = ADMIN_EXIT_FAILED;
        goto cleanup;
    }
    if (t.json)
        admin_print_json(res);
    else
        status_print(res);

cleanup:
    json_decref(res);
    admin_target_free(&t);
    return code;
}
