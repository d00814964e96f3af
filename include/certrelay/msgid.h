/*
 * The Event Log catalogue: one message id per condition an administrator or a monitoring rule
 * must tell apart, with the facts as inserts (%1, %2, ...). The texts live in cmake/messages.mc
 * (compiled into certrelayd.exe and certrelay_exit.dll); the README lists the ids. On other
 * platforms the same calls are ordinary log lines.
 *
 *   XX(name, id, severity, inserts)       severity: as in messages.mc (INFO, WARNING, ERROR)
 *
 * Keep this table, messages.mc and the README in step; tests/win checks the first two against
 * the compiled message table.
 */
#ifndef CERTRELAY_MSGID_H
#define CERTRELAY_MSGID_H

#define CRS_MSGID_SEV_INFO    1u
#define CRS_MSGID_SEV_WARNING 2u
#define CRS_MSGID_SEV_ERROR   3u

#define CRS_MSGID_MAP(XX)                                                                          \
    XX(STARTED, 100, INFO, 2)               /* %1 version, %2 configuration */                     \
    XX(STOPPED, 101, INFO, 0)               /* the broker stopped cleanly */                       \
    XX(CONFIG_INVALID, 102, ERROR, 1)       /* %1 FILE:LINE: message */                            \
    XX(RELOADED, 103, INFO, 2)              /* %1 file, %2 number of sinks */                      \
    XX(EVENTS_SPOOLED, 110, WARNING, 2)     /* %1 events, %2 spool directory */                    \
    XX(BROKER_UNREACHABLE, 111, WARNING, 3) /* %1 pipe, %2 error, %3 spool directory */            \
    XX(SPOOL_FAILED, 112, ERROR, 4)    /* %1 event kind, %2 request id, %3 spool dir, %4 error */  \
    XX(BROKER_IMPOSTOR, 113, ERROR, 4) /* %1 process id, %2 pipe, %3 service, %4 spool dir */      \
    XX(DEAD_LETTERED, 120, WARNING, 4) /* %1 sink, %2 event id, %3 request id, %4 error */         \
    XX(DISK_FULL, 121, ERROR, 1)       /* %1 the database error */                                 \
    XX(SINK_RECOVERED, 122, INFO, 2)   /* %1 sink, %2 failed attempts before */

enum crs_msgid {
#define CRS_MSGID_ENUM_(name, id, sev, n) CRS_MSGID_##name = id,
    CRS_MSGID_MAP(CRS_MSGID_ENUM_)
#undef CRS_MSGID_ENUM_
};

/* The severity (CRS_MSGID_SEV_*) of a catalogued id, 0 for an unknown one. */
static inline unsigned crs_msgid_severity(unsigned id)
{
    switch (id) {
#define CRS_MSGID_SEV_(name, id, sev, n)                                                           \
    case id:                                                                                       \
        return CRS_MSGID_SEV_##sev;
        CRS_MSGID_MAP(CRS_MSGID_SEV_)
#undef CRS_MSGID_SEV_
    default:
        return 0;
    }
}

#endif
