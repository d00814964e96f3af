/*
 * `certrelay`: the administrator's and tester's command-line tool. This file only dispatches;
 * each subcommand is one file (see commands.h).
 *
 *   certrelay simulate --pipe PATH [...]     certrelay help [COMMAND]     certrelay --version
 *   certrelay status | events | show | retry | replay | reload | check-config  (tools/admin/)
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/version.h"
#include "commands.h"

struct tool_command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct tool_command commands[] = {
#define CRS_TOOL_ENTRY_(name, cli, summary) {cli, tool_##name##_main, summary},
    CRS_TOOL_COMMANDS(CRS_TOOL_ENTRY_)
#undef CRS_TOOL_ENTRY_
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: certrelay COMMAND [OPTIONS]\n"
               "       certrelay help [COMMAND]\n"
               "       certrelay --version\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

static const struct tool_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("certrelay %s\n", CRS_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc >= 3) {
            const struct tool_command *c = find_command(argv[2]);
            if (c == NULL) {
                fprintf(stderr, "certrelay: unknown command '%s'\n", argv[2]);
                return 2;
            }
            char *args[] = {argv[2], "--help", NULL};
            return c->main(2, args);
        }
        usage(stdout);
        return 0;
    }
    const struct tool_command *c = find_command(cmd);
    if (c == NULL) {
        fprintf(stderr, "certrelay: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    return c->main(argc - 1, argv + 1);
}
