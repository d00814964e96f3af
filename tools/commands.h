/*
 * The `certrelay` subcommands. Each lives in its own file (tools/<name>.c) and exports
 * `int tool_<name>_main(int argc, char **argv)`, where argv[0] is the subcommand's name; adding
 * one is a line here and a file in tools/CMakeLists.txt.
 *
 *   XX(name, the name typed on the command line, one-line summary shown by `certrelay help`)
 *
 * The admin commands (tools/admin/) talk to the running broker; their exit codes are listed in
 * tools/admin/client.h and the README.
 */
#ifndef CERTRELAY_TOOLS_COMMANDS_H
#define CERTRELAY_TOOLS_COMMANDS_H

#define CRS_TOOL_COMMANDS(XX)                                                                      \
    XX(status, "status", "the broker, each sink's queue, the spool and the database")              \
    XX(events, "events", "list queued events (filters: sink, state, kind, time, request, serial)") \
    XX(show, "show", "one event's document and its delivery to each sink")                         \
    XX(retry, "retry", "make dead or pending deliveries due now")                                  \
    XX(replay, "replay", "deliver already delivered events to one sink again")                     \
    XX(reload, "reload", "re-read the broker's configuration file (as SIGHUP / paramchange)")      \
    XX(send_test, "send-test", "send a marked test event through one sink, show the outcome")      \
    XX(check_config, "check-config", "validate a configuration file")                              \
    XX(catchup, "catchup",                                                                         \
       "rebuild events the exit module missed from the CA database or a certutil export")          \
    XX(simulate, "simulate", "drive the stub core with synthetic or scripted certsrv events")      \
    XX(secret, "secret",                                                                           \
       "seal a secret file to this machine with DPAPI (secret set FILE, Windows)")                 \
    CRS_TOOL_WIN_COMMANDS(XX)

/* Windows only (tools/win/): setting CertRelay up on a CA server. */
#ifdef _WIN32
#define CRS_TOOL_WIN_COMMANDS(XX)                                                                  \
    XX(install, "install", "set up the service, COM classes, data directory and configuration")    \
    XX(uninstall, "uninstall",                                                                     \
       "remove what install set up (the data directory only with --purge)")                        \
    XX(activate, "activate",                                                                       \
       "add CertRelay.Exit to the CA's active exit modules, keeping the others")                   \
    XX(deactivate, "deactivate", "remove CertRelay.Exit from the CA's active exit modules")
#else
#define CRS_TOOL_WIN_COMMANDS(XX)
#endif

#define CRS_TOOL_DECLARE_(name, cli, summary) int tool_##name##_main(int argc, char **argv);
CRS_TOOL_COMMANDS(CRS_TOOL_DECLARE_)
#undef CRS_TOOL_DECLARE_

#endif
