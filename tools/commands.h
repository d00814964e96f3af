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
    XX(secret, "seal a secret file to this machine with DPAPI (secret set FILE, Windows)")         \
    CRS_TOOL_WIN_COMMANDS(XX)

/* Windows only (tools/win/): setting CertRelay up on a CA server. */
#ifdef _WIN32
#define CRS_TOOL_WIN_COMMANDS(XX)                                                                  \
    XX(install, "set up the service, COM classes, data directory and configuration")               \
    XX(uninstall, "remove what install set up (the data directory only with --purge)")             \
    XX(activate, "add CertRelay.Exit to the CA's active exit modules, keeping the others")         \
    XX(deactivate, "remove CertRelay.Exit from the CA's active exit modules")
#else
#define CRS_TOOL_WIN_COMMANDS(XX)
#endif

#define CRS_TOOL_DECLARE_(name, summary) int tool_##name##_main(int argc, char **argv);
CRS_TOOL_COMMANDS(CRS_TOOL_DECLARE_)
#undef CRS_TOOL_DECLARE_

#endif
