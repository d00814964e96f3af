/*
 * One error table for all of CertRelay's portable code, in libuv's manner: functions return 0 or
 * a negative CRS_E* code, and crs_strerror() gives the human sentence for logs. OS error numbers
 * are translated once, at the platform boundary (crs_translate_sys_error).
 */
#ifndef CERTRELAY_ERROR_H
#define CERTRELAY_ERROR_H

#define CRS_ERRNO_MAP(XX)                                                                          \
    XX(EINVAL, "invalid argument")                                                                 \
    XX(ENOMEM, "out of memory")                                                                    \
    XX(EIO, "input/output error")                                                                  \
    XX(ENOSPC, "no space left on device")                                                          \
    XX(ENOENT, "no such file, property or entry")                                                  \
    XX(EEXIST, "already exists")                                                                   \
    XX(EACCES, "permission denied")                                                                \
    XX(ETOOBIG, "message exceeds the size limit")                                                  \
    XX(EPROTO, "malformed or unexpected protocol message")                                         \
    XX(ETIMEDOUT, "operation timed out")                                                           \
    XX(ECONNREFUSED, "broker not reachable")                                                       \
    XX(ECLOSED, "connection closed by peer")                                                       \
    XX(EADDRINUSE, "another broker is already listening on this address")                          \
    XX(ENACK, "broker refused the event")                                                          \
    XX(ECONFIG, "configuration error")                                                             \
    XX(EDB, "database error")                                                                      \
    XX(ETEMPLATE, "template error")                                                                \
    XX(ERANGE, "value out of range")                                                               \
    XX(ETRANSIENT, "transient delivery failure")                                                   \
    XX(EPERMANENT, "permanent delivery failure")                                                   \
    XX(ECANCELED, "operation canceled")                                                            \
    XX(EAGAIN, "resource temporarily unavailable")                                                 \
    XX(ENOTSUP, "operation not supported")                                                         \
    XX(EFTYPE, "not a regular file (a FIFO, device, directory or symbolic link)")                  \
    XX(EINTERNAL, "internal error")                                                                \
    XX(EPEERAUTH, "the server is not the CertRelay broker")

/* The X-macro expansion confuses clang-format's indentation of the next enumerator. */
/* clang-format off */
enum crs_errno {
    CRS_OK = 0,
#define CRS_ERR_ENUM_(name, msg) CRS_##name,
    CRS_ERR_FIRST_ = -1000,
    CRS_ERRNO_MAP(CRS_ERR_ENUM_)
#undef CRS_ERR_ENUM_
    CRS_ERR_LAST_
};
/* clang-format on */

/* Returns a sentence for err ("unknown error" for codes outside the table). Never NULL. */
const char *crs_strerror(int err);
/* Returns the symbolic name ("CRS_ETIMEDOUT"). Never NULL. */
const char *crs_err_name(int err);
/* Maps a platform error (errno on Unix, a Win32 error code on Windows) to a CRS_E* code. */
int crs_translate_sys_error(int sys_error);

#endif
