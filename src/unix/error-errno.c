/*
 * errno values the POSIX backend can meet, each mapped deliberately.
 * Anything else becomes NP_EIO (common/error.c).
 */
#include "config.h"

#include <errno.h>

#include "internal.h"

const struct np__error_row np__os_error_map[] = {
    {EAGAIN, NP_EAGAIN},
#if EWOULDBLOCK != EAGAIN
    {EWOULDBLOCK, NP_EAGAIN},
#endif
    {EINPROGRESS, NP_EAGAIN},
    {EINTR, NP_EAGAIN},
    {EINVAL, NP_EINVAL},
    {EFAULT, NP_EINVAL},
    {ENOMEM, NP_ENOMEM},
    {EIO, NP_EIO},
    {ENOENT, NP_ENOENT},
    {EPIPE, NP_EPIPE},
    {EADDRINUSE, NP_EADDRINUSE},
    {EACCES, NP_EACCES},
    {EPERM, NP_EPERM},
    {EROFS, NP_EACCES},
    {ETIMEDOUT, NP_ETIMEDOUT},
    {ENAMETOOLONG, NP_ENAMETOOLONG},
    {EMSGSIZE, NP_EMSGSIZE},
    {ECONNREFUSED, NP_ECONNREFUSED},
    {ECONNRESET, NP_ECONNRESET},
    {ECONNABORTED, NP_ECONNABORTED},
    {ENOTCONN, NP_ENOTCONN},
    {ECANCELED, NP_ECANCELED},
    {EMFILE, NP_EMFILE},
    {ENFILE, NP_EMFILE},
    {EOPNOTSUPP, NP_ENOTSUP},
#if ENOTSUP != EOPNOTSUPP
    {ENOTSUP, NP_ENOTSUP},
#endif
    {EPROTONOSUPPORT, NP_ENOTSUP},
    {EAFNOSUPPORT, NP_ENOTSUP},
    {EADDRNOTAVAIL, NP_EADDRNOTAVAIL},
    {ENETUNREACH, NP_ENETUNREACH},
    {ENETDOWN, NP_ENETUNREACH},
    {EHOSTUNREACH, NP_EHOSTUNREACH},
    {EEXIST, NP_EEXIST},
    {ENOTDIR, NP_ENOTDIR},
    {ELOOP, NP_ENOTDIR},
    {ENOSPC, NP_ENOSPC},
    {EDQUOT, NP_ENOSPC},
    {ESHUTDOWN, NP_ESHUTDOWN},
    {EBADF, NP_EBADF},
    {ENOTSOCK, NP_EBADF},
    {ENOBUFS, NP_ENOBUFS},
};

const size_t np__os_error_map_len = NP__ARRAY_SIZE(np__os_error_map);
