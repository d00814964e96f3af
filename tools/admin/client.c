/*
 * The CLI's end of the admin channel (client.h): one connection per command, Hello, one
 * AdminRequest, one AdminReply, over the stub's own transport (stub/transport.h), so the pipe
 * name and socket rules are exactly the stub's.
 */
#include "client.h"

#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/defaults.h"
#include "certrelay/error.h"
#include "certrelay/frame.h"
#include "certrelay/fs.h"
#include "certrelay/timefmt.h"
#include "certrelay/version.h"
#include "config/config.h"
#include "config/ini.h"
#include "transport.h"

/* A reply carries at most a bounded listing (events --limit 10000) plus one event document. */
#define ADMIN_REPLY_MAX  CRS_FRAME_MAX
#define ADMIN_TIMEOUT_MS 60000

/*
 * A file the broker would refuse (being edited, say) still names where the broker listens: its
 * [broker] listen and spool_dir are read without the rest being validated, so that `certrelay
 * reload` can reach the broker and report the error from there.
 */
static int admin_target_scan(struct admin_target *t, const char *path)
{
    struct crs_ini ini;
    struct crs_ini_item item;
    char msg[CRS_CONFIG_ERRLEN];
    uint8_t *text = NULL;
    size_t len = 0;
    int in_broker = 0, rc;

    rc = crs_fs_read_all(path, 1u << 20, &text, &len);
    if (rc == 0)
        rc = crs_ini_init(&ini, (const char *)text, len, msg, sizeof(msg));
    if (rc == 0)
        rc = 1;
    while (rc == 1 && (rc = crs_ini_next(&ini, &item, msg, sizeof(msg))) == 1) {
        char **slot = NULL;
        if (item.kind == CRS_INI_SECTION)
            in_broker = item.namelen == 6 && memcmp(item.name, "broker", 6) == 0;
        else if (in_broker && item.kind == CRS_INI_KEY && item.namelen == 6 &&
                 memcmp(item.name, "listen", 6) == 0)
            slot = &t->pipe;
        else if (in_broker && item.kind == CRS_INI_KEY && item.namelen == 9 &&
                 memcmp(item.name, "spool_dir", 9) == 0)
            slot = &t->spool_dir;
        if (slot != NULL && *slot == NULL)
            *slot = crs_strndup(item.value, item.valuelen);
    }
    crs_free(text);
    return rc < 0 ? rc : 0;
}

/* Reads the configuration for listen and spool_dir; prints FILE:LINE on error. */
static int admin_target_from_config(struct admin_target *t, const char *path)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    int rc;

    rc = crs_config_load(path, &cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "certrelay: %s\n", err);
        if (admin_target_scan(t, path) != 0)
            return ADMIN_EXIT_USAGE;
        t->config_path = crs_strdup(path);
        if (t->pipe == NULL)
            t->pipe = crs_default_pipe();
        if (t->spool_dir == NULL)
            t->spool_dir = crs_default_spool_dir();
        return t->config_path && t->pipe && t->spool_dir ? 0 : ADMIN_EXIT_FAILED;
    }
    t->config_path = crs_strdup(path);
    if (t->pipe == NULL)
        t->pipe = crs_strdup(cfg->listen);
    t->spool_dir = crs_strdup(cfg->spool_dir);
    crs_config_free(cfg);
    if (t->config_path == NULL || t->pipe == NULL || t->spool_dir == NULL) {
        fprintf(stderr, "certrelay: out of memory\n");
        return ADMIN_EXIT_FAILED;
    }
    return 0;
}

int admin_target_init(struct admin_target *t, int *argc, char **argv)
{
    const char *config = NULL, *pipe = NULL;
    int i, out = 1, rc;

    memset(t, 0, sizeof(*t));
    for (i = 1; i < *argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--pipe") == 0) &&
            i + 1 >= *argc) {
            fprintf(stderr, "certrelay %s: %s needs a value\n", argv[0], argv[i]);
            return ADMIN_EXIT_USAGE;
        }
        if (strcmp(argv[i], "--config") == 0)
            config = argv[++i];
        else if (strcmp(argv[i], "--pipe") == 0)
            pipe = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            t->json = 1;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    if (pipe != NULL && (t->pipe = crs_strdup(pipe)) == NULL)
        return ADMIN_EXIT_FAILED;
    if (config != NULL)
        return admin_target_from_config(t, config);
    /* No file named: the service's default file when it exists (Windows:
     * %ProgramData%\CertRelay\certrelay.ini), else the platform's default pipe and spool. */
    {
        char *base = crs_default_base_dir();
        char *path = base ? crs_path_join(base, "certrelay.ini") : NULL;
        uint8_t *probe = NULL;
        size_t plen = 0;
        rc = path != NULL && crs_fs_read_all(path, 1u << 20, &probe, &plen) == 0;
        crs_free(probe);
        crs_free(base);
        if (rc) {
            rc = admin_target_from_config(t, path);
            crs_free(path);
            return rc;
        }
        crs_free(path);
    }
    if (t->pipe == NULL)
        t->pipe = crs_default_pipe();
    t->spool_dir = crs_default_spool_dir();
    return t->pipe != NULL && t->spool_dir != NULL ? 0 : ADMIN_EXIT_FAILED;
}

void admin_target_free(struct admin_target *t)
{
    crs_free(t->config_path);
    crs_free(t->pipe);
    crs_free(t->spool_dir);
    memset(t, 0, sizeof(*t));
}

static int admin_send(struct crs_transport *tr, uint8_t *buf, size_t len, uint64_t deadline)
{
    int rc = crs__transport_write_all(tr, buf, len, deadline);
    crs_free(buf);
    return rc;
}

/* Reads frames until one complete Envelope is decoded. */
static int admin_read_reply(struct crs_transport *tr, uint64_t deadline,
                            Certrelay__V1__Envelope **env)
{
    struct crs_frame_reader r;
    const uint8_t *payload;
    size_t len, got;
    char buf[16384];
    int rc;

    crs_frame_reader_init(&r, ADMIN_REPLY_MAX);
    for (;;) {
        rc = crs_frame_reader_next(&r, &payload, &len);
        if (rc == 1) {
            rc = crs_envelope_decode(payload, len, env);
            break;
        }
        if (rc < 0)
            break;
        rc = crs__transport_read(tr, buf, sizeof(buf), &got, deadline);
        if (rc == 0)
            rc = crs_frame_reader_feed(&r, buf, got);
        if (rc != 0)
            break;
    }
    crs_frame_reader_free(&r);
    return rc;
}

static int admin_not_reachable(const struct admin_target *t, int rc)
{
    if (rc == CRS_EACCES) {
        fprintf(stderr,
                "certrelay: not authorized: cannot open %s (%s); only root or the broker's "
                "own account (on Windows: SYSTEM and Administrators) may use it\n",
                t->pipe, crs_strerror(rc));
        return ADMIN_EXIT_REFUSED;
    }
    fprintf(stderr, "certrelay: the broker is not running (nothing answers at %s: %s)\n", t->pipe,
            crs_strerror(rc));
    return ADMIN_EXIT_NOT_RUNNING;
}

int admin_call(const struct admin_target *t, const char *command, json_t *params, json_t **result)
{
    struct crs_transport *tr = NULL;
    Certrelay__V1__Envelope *env = NULL;
    uint64_t deadline = crs_mono_ms() + ADMIN_TIMEOUT_MS;
    char *params_text = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    int rc, code = ADMIN_EXIT_FAILED;

    *result = NULL;
    if (params != NULL && (params_text = json_dumps(params, JSON_COMPACT)) == NULL) {
        fprintf(stderr, "certrelay: out of memory\n");
        return ADMIN_EXIT_FAILED;
    }
    /* No service check: the CLI must also reach a broker run with --console for diagnosis, and
     * an administrator's request carries no certificate data an impostor could harvest. */
    rc = crs__transport_open(t->pipe, NULL, deadline, &tr, NULL);
    if (rc != 0) {
        code = admin_not_reachable(t, rc);
        goto cleanup;
    }
    rc = crs_frame_hello(CRS_PROTOCOL_VERSION, "certrelay-cli " CRS_VERSION, "", &buf, &len);
    if (rc == 0)
        rc = admin_send(tr, buf, len, deadline);
    if (rc == 0)
        rc = crs_frame_admin_request(command, params_text, &buf, &len);
    if (rc == 0)
        rc = admin_send(tr, buf, len, deadline);
    /* A broker that refuses the client answers and closes without reading what was sent, so
     * a failed write may still leave its reply to be read. */
    if (rc == 0 || rc == CRS_ECLOSED)
        rc = admin_read_reply(tr, deadline, &env);
    if (rc != 0) {
        fprintf(stderr, "certrelay: talking to the broker at %s failed: %s\n", t->pipe,
                crs_strerror(rc));
        code = rc == CRS_ECONNREFUSED ? ADMIN_EXIT_NOT_RUNNING : ADMIN_EXIT_FAILED;
        goto cleanup;
    }
    if (env->body_case != CERTRELAY__V1__ENVELOPE__BODY_ADMIN_REPLY) {
        fprintf(stderr,
                "certrelay: the broker at %s sent an unexpected answer (an older broker "
                "without the admin channel?)\n",
                t->pipe);
        goto cleanup;
    }
    if (env->admin_reply->status != 0) {
        const char *why = env->admin_reply->error ? env->admin_reply->error
                                                  : crs_strerror(env->admin_reply->status);
        fprintf(stderr, "certrelay: %s: %s\n", command, why);
        code = env->admin_reply->status == CRS_EACCES ? ADMIN_EXIT_REFUSED : ADMIN_EXIT_FAILED;
        goto cleanup;
    }
    *result =
        json_loads(env->admin_reply->result_json ? env->admin_reply->result_json : "{}", 0, &jerr);
    if (*result == NULL) {
        fprintf(stderr, "certrelay: unreadable reply from the broker: %s\n", jerr.text);
        goto cleanup;
    }
    code = ADMIN_EXIT_OK;

cleanup:
    crs_envelope_free(env);
    crs__transport_close(tr);
    free(params_text);
    return code;
}

void admin_fmt_time(int64_t unix_ms, char *out, size_t outlen)
{
    if (unix_ms < 0)
        snprintf(out, outlen, "-");
    else
        crs_time_rfc3339(unix_ms, out, outlen);
}

void admin_fmt_age(int64_t ms, char *out, size_t outlen)
{
    int64_t s = ms / 1000;

    if (ms < 0)
        snprintf(out, outlen, "-");
    else if (ms < 1000)
        snprintf(out, outlen, "%lldms", (long long)ms);
    else if (s < 3600)
        snprintf(out, outlen, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(out, outlen, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, outlen, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

int admin_parse_since(const char *s, int64_t *unix_ms)
{
    int64_t d;

    if (crs_time_parse_rfc3339(s, unix_ms) == 0)
        return 0;
    if (crs_parse_duration_ms(s, &d) == 0) {
        *unix_ms = crs_now_ms() - d;
        return 0;
    }
    return CRS_EINVAL;
}

void admin_print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

int admin_main(const struct admin_command *c, int argc, char **argv)
{
    struct admin_target t;
    json_t *params = NULL, *res = NULL;
    int code;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        c->usage(stdout);
        return ADMIN_EXIT_OK;
    }
    code = admin_target_init(&t, &argc, argv);
    params = json_object();
    if (code == 0 && params == NULL)
        code = ADMIN_EXIT_FAILED;
    if (code == 0 && c->parse != NULL)
        code = c->parse(c, argc, argv, params);
    else if (code == 0 && argc != 1)
        code = ADMIN_EXIT_USAGE;
    if (code == ADMIN_EXIT_USAGE)
        c->usage(stderr);
    if (code == 0)
        code = admin_call(&t, c->command, params, &res);
    if (code == 0 && c->print != NULL)
        code = c->print(res, t.json);
    else if (code == 0)
        admin_print_json(res);
    json_decref(params);
    json_decref(res);
    admin_target_free(&t);
    return code;
}
