/*
 * npipe: named pipes (and TCP sockets) with a readiness interface.
 *
 * A program registers pipe ends with one np_poll, waits for readable or
 * writable events with np_poll_wait, and calls non-blocking np_read and
 * np_write, which return NP_EAGAIN when they would block.  The same API
 * and the same behaviour on Windows (I/O completion ports) and on Linux
 * (Unix domain sockets and epoll).  See npipe(7).
 *
 * Every function that can fail returns 0 (or a byte count) on success and
 * a negative NP_E* code on failure.
 */
#ifndef NPIPE_H
#define NPIPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(NP_BUILDING) && defined(DLL_EXPORT)
#define NP_EXTERN __declspec(dllexport)
#elif defined(__GNUC__) && !defined(_WIN32)
#define NP_EXTERN __attribute__((visibility("default")))
#else
#define NP_EXTERN
#endif

#define NPIPE_VERSION_MAJOR 0
#define NPIPE_VERSION_MINOR 1
#define NPIPE_VERSION_PATCH 0
#define NPIPE_VERSION_STRING "0.1.0"
/* MAJOR << 16 | MINOR << 8 | PATCH, comparable with np_version(). */
#define NPIPE_VERSION_HEX                                                     \
  ((NPIPE_VERSION_MAJOR << 16) | (NPIPE_VERSION_MINOR << 8) |                 \
   NPIPE_VERSION_PATCH)

/* Returns the version of the library linked at run time, as
 * NPIPE_VERSION_HEX encodes it. */
NP_EXTERN unsigned np_version(void);
/* Returns the same version as a static string, e.g. "0.1.0". */
NP_EXTERN const char *np_version_string(void);

/*
 * Error codes.  Their values are fixed and identical on every platform;
 * they never change between releases.  XX(name, value, message).
 */
#define NP_ERRNO_MAP(XX)                                                      \
  XX(EOF, -1, "end of stream")                                                \
  XX(EAGAIN, -2, "resource temporarily unavailable")                          \
  XX(EINVAL, -3, "invalid argument")                                          \
  XX(ENOMEM, -4, "not enough memory")                                         \
  XX(EIO, -5, "input/output error")                                           \
  XX(ENOENT, -6, "no such pipe or address")                                   \
  XX(EBUSY, -7, "all pipe instances are busy")                                \
  XX(EPIPE, -8, "broken pipe")                                                \
  XX(EADDRINUSE, -9, "address already in use")                                \
  XX(EACCES, -10, "permission denied")                                        \
  XX(ETIMEDOUT, -11, "operation timed out")                                   \
  XX(ENAMETOOLONG, -12, "name too long")                                      \
  XX(EMSGSIZE, -13, "message too long for the buffer")                        \
  XX(ECONNREFUSED, -14, "connection refused")                                 \
  XX(ECONNRESET, -15, "connection reset by peer")                             \
  XX(ECONNABORTED, -16, "connection aborted")                                 \
  XX(ENOTCONN, -17, "not connected")                                          \
  XX(ECANCELED, -18, "operation canceled")                                    \
  XX(EMFILE, -19, "too many open files")                                      \
  XX(ENOTSUP, -20, "operation not supported")                                 \
  XX(EADDRNOTAVAIL, -21, "address not available")                             \
  XX(ENETUNREACH, -22, "network is unreachable")                              \
  XX(EHOSTUNREACH, -23, "host is unreachable")                                \
  XX(EEXIST, -24, "already exists")                                           \
  XX(ENOTDIR, -25, "not a directory")                                         \
  XX(ENOSPC, -26, "no space left on device")                                  \
  XX(ESHUTDOWN, -27, "cannot write after shutdown")                           \
  XX(EBADF, -28, "bad handle or descriptor")                                  \
  XX(ENOBUFS, -29, "no buffer space available")                               \
  XX(EPERM, -30, "operation not permitted")

enum np_errno {
#define NP_ERRNO_ENUM_(name, value, msg) NP_##name = (value),
  NP_ERRNO_MAP(NP_ERRNO_ENUM_)
#undef NP_ERRNO_ENUM_
  NP_ERRNO_LAST_ = -31
};

/* Returns a static message for an NP_E* code ("broken pipe"), or
 * "unknown error" for any other value. */
NP_EXTERN const char *np_strerror(int err);
/* Returns the static name of an NP_E* code ("NP_EPIPE"), or
 * "NP_UNKNOWN" for any other value. */
NP_EXTERN const char *np_errname(int err);

/* Opaque objects.  Each listener and stream belongs to one poller for its
 * whole life (np_accept_to chooses a stream's).  Any number of threads
 * may wait on one poller; see npipe(7), "Threads". */
typedef struct np_poll np_poll;
typedef struct np_listener np_listener;
typedef struct np_stream np_stream;

/* Interest and event bits. */
#define NP_READABLE 0x01u /* interest and event */
#define NP_WRITABLE 0x02u /* interest and event */
#define NP_HUP 0x04u      /* event only: the peer is gone */
#define NP_ERR 0x08u      /* event only: np_stream_error has an error */
#define NP_EDGE 0x10u     /* interest modifier: report once per transition */
#define NP_ONESHOT 0x20u  /* interest modifier: disarm after one report */

typedef struct np_event {
  uint64_t token;  /* the token given at registration */
  uint32_t events; /* NP_READABLE | NP_WRITABLE | NP_HUP | NP_ERR */
} np_event;

/* Option flags (np_options.flags). */
#define NP_OPT_MESSAGE 0x01u      /* message mode: np_read returns messages */
#define NP_OPT_ALLOW_REMOTE 0x02u /* Windows: accept clients from the network */
#define NP_OPT_WAIT_BUSY 0x04u    /* connect: wait for a free instance */
#define NP_OPT_WAIT_ABSENT 0x08u  /* connect: wait for the name to appear */
#define NP_OPT_ANY_USER 0x10u     /* POSIX: accept clients of any user */

/*
 * Options for np_listen and np_connect.  A zero-initialised struct, or a
 * NULL pointer, selects the secure defaults: current user only, remote
 * clients rejected, byte mode, backlog 4, no waiting.
 */
typedef struct np_options {
  uint32_t flags;      /* NP_OPT_* */
  int backlog;         /* pending instances / listen backlog; 0: 4 */
  int timeout_ms;      /* connect wait with NP_OPT_WAIT_*; < 0: forever */
  size_t write_limit;  /* bytes np_write buffers per stream; 0: 1 MiB */
  const char *sddl;    /* Windows: security descriptor, NULL: default */
  uint32_t allow_uid;  /* POSIX: also accept this uid (with flags bit) */
  unsigned mode;       /* POSIX: socket file mode, 0: 0600 */
  int linger_ms;       /* np_close delivers for at most this long, then
                          aborts; 0: 30000, < 0: without a limit */
} np_options;

/* Also accept the uid in np_options.allow_uid (POSIX). */
#define NP_OPT_ALLOW_UID 0x20u
/* connect: accept a server of any user (by default it must be the
 * current user, or root on POSIX, or SYSTEM or Administrators on
 * Windows; see np_options(3)). */
#define NP_OPT_ANY_SERVER 0x40u

/* The poller. */

/* Creates a poller in *out.  Returns 0, NP_EINVAL, NP_ENOMEM or NP_EMFILE. */
NP_EXTERN int np_poll_new(np_poll **out);
/* Frees a poller.  Listeners and streams still open are closed first,
 * without reporting any event.  NULL is ignored. */
NP_EXTERN void np_poll_free(np_poll *poll);
/* Waits until every stream closed with np_close has delivered the bytes
 * np_write accepted (or lost its peer), for at most timeout_ms (< 0:
 * without a limit, 0: only check).  Events and wake-ups that arrive
 * meanwhile are kept for the next np_poll_wait.  Call it before a
 * program exits or frees the poller.  Returns 0 when nothing is left to
 * deliver, NP_ETIMEDOUT, NP_EINVAL or another NP_E*. */
NP_EXTERN int np_poll_flush(np_poll *poll, int timeout_ms);
/* Waits for events and stores up to max_events of them.  timeout_ms 0
 * never blocks, a negative value waits forever, a positive value waits at
 * least that long.  Returns the number of events (0 on timeout or
 * wake-up) or a negative NP_E* code (NP_EINVAL for a NULL poll or events,
 * or max_events <= 0). */
NP_EXTERN int np_poll_wait(np_poll *poll, np_event *events, int max_events,
                           int timeout_ms);
/* Makes a current or the next np_poll_wait return early.  Safe from any
 * thread; wake-ups before a wait coalesce into one.  Returns 0 or NP_E*. */
NP_EXTERN int np_poll_wake(np_poll *poll);

/* Listeners. */

/* Starts accepting connections on address ("pipe:NAME", "\\.\pipe\NAME",
 * "unix:/path" on POSIX, "tcp:HOST:PORT").  The listener is reported as
 * NP_READABLE with token while a connection waits for np_accept.
 * Returns 0 or NP_EINVAL, NP_ENAMETOOLONG, NP_EADDRINUSE, NP_EACCES, ... */
NP_EXTERN int np_listen(np_poll *poll, const char *address,
                        const np_options *opts, uint64_t token,
                        np_listener **out);
/* Hands out one waiting connection as a stream registered with token and
 * interest.  Returns 0, NP_EAGAIN when none waits, or another NP_E*
 * (once, for an error the listener met replacing its pipe instances,
 * which it also reports as NP_ERR on its token). */
NP_EXTERN int np_accept(np_listener *l, uint64_t token, uint32_t interest,
                        np_stream **out);
/* As np_accept, but registers the stream with poll, which may be another
 * poller than the listener's: a server with one poller per thread
 * spreads its connections over them.  Returns what np_accept returns,
 * and NP_EINVAL for a NULL poll. */
NP_EXTERN int np_accept_to(np_listener *l, np_poll *poll, uint64_t token,
                           uint32_t interest, np_stream **out);
/* Writes the listener's address, NUL-terminated, into buf ("pipe:NAME",
 * "tcp:127.0.0.1:40123").  Returns its length, or NP_EINVAL, or
 * NP_ENAMETOOLONG when len is too small. */
NP_EXTERN int np_listener_address(np_listener *l, char *buf, size_t len);
/* Changes the listener's token and interest (NP_READABLE plus modifiers,
 * or 0 to stop reporting).  Returns 0 or NP_EINVAL. */
NP_EXTERN int np_listener_set_interest(np_listener *l, uint64_t token,
                                       uint32_t interest);
/* Stops listening and frees the listener; connections not yet accepted are
 * dropped.  The token is never reported again.  NULL is ignored. */
NP_EXTERN void np_listener_close(np_listener *l);

/* Streams. */

/* Connects to address and registers the stream with token and interest.
 * Never blocks: with NP_OPT_WAIT_BUSY or NP_OPT_WAIT_ABSENT (and a TCP
 * address, or a remote pipe name on Windows) it may return 0 with a
 * stream that is still connecting; the poller completes it and reports
 * NP_WRITABLE, with NP_ERR and np_stream_error giving the failure
 * (NP_ETIMEDOUT when opts' timeout passed).  Returns 0, NP_ENOENT (no
 * such pipe), NP_EBUSY (all instances busy), NP_ETIMEDOUT (a wait flag
 * with timeout_ms 0), NP_EACCES, NP_EINVAL, ... */
NP_EXTERN int np_connect(np_poll *poll, const char *address,
                         const np_options *opts, uint64_t token,
                         uint32_t interest, np_stream **out);
/* Reads up to len bytes (in message mode: exactly one message).  Returns
 * the count, 0 only for an empty message or len 0, NP_EOF at the end,
 * NP_EAGAIN when nothing is ready, NP_EMSGSIZE when the next message does
 * not fit (it stays readable), or another NP_E*. */
NP_EXTERN ptrdiff_t np_read(np_stream *s, void *buf, size_t len);
/* Accepts up to len bytes for sending (in message mode: all of them as
 * one message, or none).  Returns the count accepted, NP_EAGAIN when the
 * stream's write buffer is full, NP_EPIPE when the peer is gone,
 * NP_ESHUTDOWN after np_shutdown, or another NP_E*.  Accepted bytes are
 * delivered even if the stream is closed at once. */
NP_EXTERN ptrdiff_t np_write(np_stream *s, const void *buf, size_t len);
/* Half-closes: no more writes; the peer reads NP_EOF after the bytes
 * already written.  Returns 0 or NP_E*. */
NP_EXTERN int np_shutdown(np_stream *s);
/* Changes token and interest (NP_READABLE, NP_WRITABLE plus NP_EDGE or
 * NP_ONESHOT).  Re-arms a oneshot stream.  Returns 0 or NP_EINVAL. */
NP_EXTERN int np_stream_set_interest(np_stream *s, uint64_t token,
                                     uint32_t interest);
/* Takes the stream's pending error (e.g. the outcome of a TCP connect),
 * or returns 0 when there is none. */
NP_EXTERN int np_stream_error(np_stream *s);

/* The peer of a stream, as the operating system vouches for it. */
typedef struct np_peer {
  int64_t pid; /* process id, or -1 when unknown */
  int64_t uid; /* POSIX user id, or -1 (Windows) */
  int64_t gid; /* POSIX group id, or -1 (Windows) */
} np_peer;

/* Fills *peer with the credentials of the process at the other end.
 * Returns 0, NP_ENOTSUP (e.g. TCP) or another NP_E*. */
NP_EXTERN int np_stream_peer(np_stream *s, np_peer *peer);
/* Closes the stream without blocking: reads and connects are cancelled,
 * bytes already accepted by np_write are still delivered while the peer
 * lives, for at most np_options.linger_ms (and while the peer sends at
 * most 1 MiB more), after which the stream is aborted.  The token is
 * never reported again.  NULL is ignored. */
NP_EXTERN void np_close(np_stream *s);
/* Closes the stream at once, dropping what np_write accepted and did not
 * send yet (a TCP peer sees a reset).  The token is never reported
 * again.  NULL is ignored. */
NP_EXTERN void np_abort(np_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* NPIPE_H */
