/*
 * The POSIX backend's test seam (see common/seam.h).  The seam build
 * force-includes this header ahead of every library file: it includes
 * config.h and every system header that declares a wrapped function
 * (their include guards make the files' own includes no-ops), then, with
 * NP_SEAM defined, redirects each call to its np__seam_ wrapper
 * (seam-posix.c).
 */
#ifndef NP_UNIX_SEAM_POSIX_H
#define NP_UNIX_SEAM_POSIX_H

/* Some library files ask for GNU extensions (accept4, struct ucred)
 * before their first include; this header comes before them, so it asks
 * for the same, spelled the same way. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(NP_SEAM)
#define NP_SEAM_REDIRECT 1 /* common/seam.h redirects the malloc family */
#endif
#include "common/seam.h"

#define NP__U1(a) (uintptr_t)(a)
#define NP__U2(a, b) NP__U1(a), (uintptr_t)(b)
#define NP__U3(a, b, c) NP__U2(a, b), (uintptr_t)(c)
#define NP__U4(a, b, c, d) NP__U3(a, b, c), (uintptr_t)(d)
#define NP__U5(a, b, c, d, e) NP__U4(a, b, c, d), (uintptr_t)(e)

#define NP__ANY NP__SEAM_ANY
#define NP__MEM (NP__SEAM_ANY | NP__SEAM_NOMEM)
#define NP__FDS (NP__MEM | NP__SEAM_NOFD)
#define NP__INTR NP__SEAM_INTR
#define NP__FD NP__SEAM_HANDLE

/* The wrapped calls that follow one pattern: the failure value, the
 * class, the usual error for a fault, the parameters, the arguments and
 * the arguments as recorded.  X(ret, name, fail, cls, err, params, args,
 * recorded). */
#define NP__SEAM_POSIX_FNS(X)                                                 \
  X(int, socket, -1, NP__FDS, EMFILE, (int dom, int type, int proto),         \
    (dom, type, proto), NP__U3(dom, type, proto))                             \
  X(int, bind, -1, NP__MEM | NP__FD, EADDRINUSE,                              \
    (int fd, const struct sockaddr *sa, socklen_t len), (fd, sa, len),        \
    NP__U3(fd, sa, len))                                                      \
  X(int, listen, -1, NP__ANY | NP__FD, EADDRINUSE, (int fd, int backlog),     \
    (fd, backlog), NP__U2(fd, backlog))                                       \
  X(int, accept4, -1, NP__FDS | NP__INTR | NP__FD, EMFILE,                    \
    (int fd, struct sockaddr *sa, socklen_t *len, int flags),                 \
    (fd, sa, len, flags), NP__U4(fd, sa, len, flags))                         \
  X(int, connect, -1, NP__MEM | NP__INTR | NP__FD, ECONNREFUSED,              \
    (int fd, const struct sockaddr *sa, socklen_t len), (fd, sa, len),        \
    NP__U3(fd, sa, len))                                                      \
  X(int, epoll_create1, -1, NP__FDS, EMFILE, (int flags), (flags),            \
    NP__U1(flags))                                                            \
  X(int, epoll_ctl, -1, NP__MEM | NP__FD, ENOMEM,                             \
    (int ep, int op, int fd, struct epoll_event *ev), (ep, op, fd, ev),       \
    NP__U4(ep, op, fd, ev))                                                   \
  X(int, epoll_wait, -1, NP__ANY | NP__INTR | NP__FD, EINTR,                  \
    (int ep, struct epoll_event *ev, int max, int ms), (ep, ev, max, ms),     \
    NP__U4(ep, ev, max, ms))                                                  \
  X(int, eventfd, -1, NP__FDS, EMFILE, (unsigned int init, int flags),        \
    (init, flags), NP__U2(init, flags))                                       \
  X(ssize_t, read, -1, NP__ANY | NP__INTR | NP__FD, EIO,                      \
    (int fd, void *buf, size_t len), (fd, buf, len), NP__U3(fd, buf, len))    \
  X(ssize_t, write, -1, NP__ANY | NP__INTR | NP__FD, EIO,                     \
    (int fd, const void *buf, size_t len), (fd, buf, len),                    \
    NP__U3(fd, buf, len))                                                     \
  X(ssize_t, recv, -1, NP__MEM | NP__INTR | NP__FD, ECONNRESET,               \
    (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags),        \
    NP__U4(fd, buf, len, flags))                                              \
  X(ssize_t, send, -1, NP__MEM | NP__INTR | NP__FD, ENOBUFS,                    \
    (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags),  \
    NP__U4(fd, buf, len, flags))                                              \
  X(ssize_t, recvmsg, -1, NP__MEM | NP__INTR | NP__FD, ECONNRESET,            \
    (int fd, struct msghdr *msg, int flags), (fd, msg, flags),                \
    NP__U3(fd, msg, flags))                                                   \
  X(ssize_t, sendmsg, -1, NP__MEM | NP__INTR | NP__FD, ENOBUFS,                 \
    (int fd, const struct msghdr *msg, int flags), (fd, msg, flags),          \
    NP__U3(fd, msg, flags))                                                   \
  X(int, shutdown, -1, NP__ANY | NP__FD, EBADF, (int fd, int how), (fd, how), \
    NP__U2(fd, how))                                                          \
  X(int, getsockopt, -1, NP__MEM | NP__FD, ENOBUFS,                           \
    (int fd, int lvl, int opt, void *val, socklen_t *len),                    \
    (fd, lvl, opt, val, len), NP__U5(fd, lvl, opt, val, len))                 \
  X(int, setsockopt, -1, NP__MEM | NP__FD, ENOBUFS,                           \
    (int fd, int lvl, int opt, const void *val, socklen_t len),               \
    (fd, lvl, opt, val, len), NP__U5(fd, lvl, opt, val, len))                 \
  X(int, getsockname, -1, NP__MEM | NP__FD, ENOBUFS,                          \
    (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len),             \
    NP__U3(fd, sa, len))                                                      \
  X(int, lstat, -1, NP__MEM, EACCES, (const char *path, struct stat *st),     \
    (path, st), NP__U2(path, st))                                             \
  X(int, fstat, -1, NP__MEM | NP__FD, ENOMEM, (int fd, struct stat *st),      \
    (fd, st), NP__U2(fd, st))                                                 \
  X(int, mkdir, -1, NP__MEM, EACCES, (const char *path, mode_t mode),         \
    (path, mode), NP__U2(path, mode))                                         \
  X(int, chmod, -1, NP__MEM, EPERM, (const char *path, mode_t mode),          \
    (path, mode), NP__U2(path, mode))                                         \
  X(int, fchmod, -1, NP__ANY | NP__FD, EPERM, (int fd, mode_t mode),          \
    (fd, mode), NP__U2(fd, mode))                                             \
  X(int, flock, -1, NP__MEM | NP__FD, ENOLCK, (int fd, int op), (fd, op),     \
    NP__U2(fd, op))                                                           \
  X(int, unlink, -1, NP__MEM, EACCES, (const char *path), (path),             \
    NP__U1(path))                                                             \
  X(int, nanosleep, -1, NP__ANY | NP__INTR, EINTR,                            \
    (const struct timespec *req, struct timespec *rem), (req, rem),           \
    NP__U2(req, rem))                                                         \
  X(int, fcntl, -1, NP__ANY | NP__FD, EBADF, (int fd, int cmd, int arg),      \
    (fd, cmd, arg), NP__U3(fd, cmd, arg))                                     \
  X(int, poll, -1, NP__MEM | NP__INTR, ENOMEM,                                \
    (struct pollfd *fds, nfds_t n, int ms), (fds, n, ms), NP__U3(fds, n, ms))

/* The declarations of the pattern's wrappers. */
#define NP__SEAM_DECLARE(ret, name, fail, cls, err, params, args, rec)        \
  ret np__seam_##name params;
NP__SEAM_POSIX_FNS(NP__SEAM_DECLARE)
#undef NP__SEAM_DECLARE

/* The others, written out in seam-posix.c. */
int np__seam_open(const char *path, int flags, ...);
int np__seam_close(int fd);
int np__seam_getaddrinfo(const char *host, const char *port,
                         const struct addrinfo *hints, struct addrinfo **out);
void np__seam_freeaddrinfo(struct addrinfo *ai);
int np__seam_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                         char *host, socklen_t hostlen, char *serv,
                         socklen_t servlen, int flags);

#if defined(NP_SEAM)
#define socket(...) NP__SEAM_CALL(socket, __VA_ARGS__)
#define bind(...) NP__SEAM_CALL(bind, __VA_ARGS__)
#define listen(...) NP__SEAM_CALL(listen, __VA_ARGS__)
#define accept4(...) NP__SEAM_CALL(accept4, __VA_ARGS__)
#define connect(...) NP__SEAM_CALL(connect, __VA_ARGS__)
#define epoll_create1(...) NP__SEAM_CALL(epoll_create1, __VA_ARGS__)
#define epoll_ctl(...) NP__SEAM_CALL(epoll_ctl, __VA_ARGS__)
#define epoll_wait(...) NP__SEAM_CALL(epoll_wait, __VA_ARGS__)
#define eventfd(...) NP__SEAM_CALL(eventfd, __VA_ARGS__)
#define read(...) NP__SEAM_CALL(read, __VA_ARGS__)
#define write(...) NP__SEAM_CALL(write, __VA_ARGS__)
#define recv(...) NP__SEAM_CALL(recv, __VA_ARGS__)
#define send(...) NP__SEAM_CALL(send, __VA_ARGS__)
#define recvmsg(...) NP__SEAM_CALL(recvmsg, __VA_ARGS__)
#define sendmsg(...) NP__SEAM_CALL(sendmsg, __VA_ARGS__)
#define shutdown(...) NP__SEAM_CALL(shutdown, __VA_ARGS__)
#define getsockopt(...) NP__SEAM_CALL(getsockopt, __VA_ARGS__)
#define setsockopt(...) NP__SEAM_CALL(setsockopt, __VA_ARGS__)
#define getsockname(...) NP__SEAM_CALL(getsockname, __VA_ARGS__)
#define lstat(...) NP__SEAM_CALL(lstat, __VA_ARGS__)
#define fstat(...) NP__SEAM_CALL(fstat, __VA_ARGS__)
#define mkdir(...) NP__SEAM_CALL(mkdir, __VA_ARGS__)
#define chmod(...) NP__SEAM_CALL(chmod, __VA_ARGS__)
#define fchmod(...) NP__SEAM_CALL(fchmod, __VA_ARGS__)
#define flock(...) NP__SEAM_CALL(flock, __VA_ARGS__)
#define unlink(...) NP__SEAM_CALL(unlink, __VA_ARGS__)
#define nanosleep(...) NP__SEAM_CALL(nanosleep, __VA_ARGS__)
/* Every fcntl call here passes an int third argument. */
#define fcntl(...) NP__SEAM_CALL(fcntl, __VA_ARGS__)
#define poll(...) NP__SEAM_CALL(poll, __VA_ARGS__)
#define open(...) NP__SEAM_CALL(open, __VA_ARGS__)
#define close(...) NP__SEAM_CALL(close, __VA_ARGS__)
#define getaddrinfo(...) NP__SEAM_CALL(getaddrinfo, __VA_ARGS__)
#define freeaddrinfo(...) NP__SEAM_CALL(freeaddrinfo, __VA_ARGS__)
#define getnameinfo(...) NP__SEAM_CALL(getnameinfo, __VA_ARGS__)
#endif

#endif /* NP_UNIX_SEAM_POSIX_H */
