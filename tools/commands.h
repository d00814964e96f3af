/*
 * The `certrelay` subcommands. Each lives in its own file (tools/<name>.c) and exports
 * `int tool_<name>_main(int argc, char **argv)`, where argv[0] is the subcommand's name; adding
 * one is a line here and a file in tools/CMakeLists.txt.
 *
 *   XX(name, one-line summary shown by `certrelay help`)
 */
#ifndef CERTRELAY_TOOLS_COMMANDS_H
#define CERTRELAY_TOOLS_COMMANDS_H

#define CRS_TOOL_COMMANDS(XX)                                                                      \
    XX(simulate, "drive the stub core with synthetic or scripted certsrv events")                  \
    XX(secret, "seal a secret file to this machine with DPAPI (secret set FILE, Windows)")

#define CRS_TOOL_DECLARE_(name, summary) int tool_##name##_main(int argc, char **argv);
CRS_TOOL_COMMANDS(CRS_TOOL_DECLARE_)
#undef CRS_TOOL_DECLARE_

#endif
