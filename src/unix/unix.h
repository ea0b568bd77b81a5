/*
 * What the POSIX backend's modules share: the epoll poller and the watch
 * through which a file descriptor receives its epoll events.
 */
#ifndef NP_UNIX_H
#define NP_UNIX_H

#include <stdint.h>

#include "internal.h"

struct np__watch;

/* Called with the poller's lock held and the epoll event bits for the
 * fd. */
typedef void (*np__watch_cb)(struct np__watch *w, uint32_t epoll_events);

struct np__watch {
  int fd;
  np__watch_cb on_event;
  uint32_t slot; /* while in the epoll set: its entry (poll-epoll.c) */
};

/* Adds, modifies or removes w's fd in the poller's epoll set with the
 * given EPOLL* bits.  Return 0 or NP_E*.  Once np__epoll_del returns, no
 * event for w is dispatched, not even one that another thread took out
 * of the kernel before: w may be freed. */
int np__epoll_add(np_poll *poll, struct np__watch *w, uint32_t events);
int np__epoll_mod(np_poll *poll, struct np__watch *w, uint32_t events);
void np__epoll_del(np_poll *poll, struct np__watch *w);
/* Counts closed streams that still send what np_write accepted: +1 when
 * one starts, -1 when it is done or freed (np_poll_flush waits for 0). */
void np__epoll_flushing(np_poll *poll, int delta);

/* Maps the current errno. */
int np__error_from_errno(void);

/* ---- streams over a connected socket (fd-stream.c, fd-message.c) ------
 *
 * A generic non-blocking socket stream: AF_UNIX pipes (byte or message
 * mode) and TCP connections share it.  It owns a user-space write buffer
 * of up to write_limit bytes, so that np_write never blocks and np_close
 * still delivers what np_write accepted: a closed stream with unsent
 * bytes stays in the epoll set, silent, until it has flushed them or the
 * peer is gone, and np_poll_free frees it if it is still there.
 *
 * Readiness follows the core's contract: READABLE is signalled on each
 * arrival (EPOLLIN, edge-triggered) and cleared when a read gives
 * NP_EAGAIN; WRITABLE is signalled at creation (or when a connect
 * completes) and when buffer room frees after an NP_EAGAIN; NP_HUP when
 * the peer is gone.  EPOLLOUT is in the epoll set only while bytes are
 * buffered or a connect is in progress. */

/* np__fd_stream_new flags. */
enum np__fd_flags {
  /* SOCK_SEQPACKET with npipe's framing: one np_write is one message, one
   * np_read returns one message (fd-message.c). */
  NP__FD_MESSAGE = 0x01,
  /* Pipe semantics: ECONNRESET (the peer closed with unread data) reads as
   * NP_EOF and writes fail with NP_EPIPE; np_stream_peer answers from
   * SO_PEERCRED.  Without it ECONNRESET is NP_ECONNRESET and
   * np_stream_peer is NP_ENOTSUP (TCP). */
  NP__FD_PIPE = 0x02,
  /* A non-blocking connect(2) is in progress on fd: the stream becomes
   * WRITABLE when it completes; a failure is stored for np_stream_error
   * (signalled as NP_ERR | NP_WRITABLE) and returned by later reads and
   * writes.  np_write buffers in the meantime. */
  NP__FD_CONNECTING = 0x04
};

/* Wraps fd, a connected (or connecting) non-blocking close-on-exec
 * socket, in a stream registered with poll's core under token and
 * interest, and adds fd to the epoll set.  write_limit is the most bytes
 * np_write buffers (must be > 0).  Returns 0 with *out set and fd owned
 * by the stream, or NP_E* with nothing registered and fd still the
 * caller's to close. */
int np__fd_stream_new(np_poll *poll, int fd, unsigned flags,
                      size_t write_limit, uint64_t token, uint32_t interest,
                      np_stream **out);

/* ---- connects that wait (fd-stream.c) ---------------------------------
 *
 * A pipe client that waits for a busy or absent server gets its stream at
 * once.  Its socket is made but not connected and stays out of the epoll
 * set; the poller's timers call the dialer's attempt (at the next wait,
 * then backing off from 1 to NP__DIAL_DELAY_MAX ms) until it connects (the stream then reports
 * NP_WRITABLE), fails for good, or passes its deadline (NP_WRITABLE |
 * NP_ERR, and np_stream_error gives the error: NP_ETIMEDOUT for the
 * deadline).  Meanwhile reads and writes return NP_EAGAIN; np_close
 * cancels it without a trace. */

#define NP__DIAL_DELAY_MAX 50

struct np__fd_dial {
  /* One more connect(2) of fd.  Returns 0 once connected (and vetted),
   * NP_EAGAIN to be tried again later, or a final NP_E*. */
  int (*attempt)(struct np__fd_dial *d, int fd);
  /* Frees the dialer, once, when the wait ends either way or the stream
   * is closed. */
  void (*release)(struct np__fd_dial *d);
  /* The stream's part. */
  struct np__timer timer;
  uint64_t deadline; /* np__now_ms() after which it fails; UINT64_MAX: never */
  uint64_t delay_ms; /* the next retry's delay */
  struct np__fd_stream *stream;
};

/* As np__fd_stream_new, for fd, a socket whose connect waits: the stream
 * is connecting and dial retries it on the poller's timers until
 * deadline (UINT64_MAX: no limit).  Returns 0 with *out set, fd and dial
 * owned by the stream; or NP_E* with nothing registered and both still
 * the caller's. */
int np__fd_stream_dial(np_poll *poll, int fd, unsigned flags,
                       size_t write_limit, uint64_t token, uint32_t interest,
                       struct np__fd_dial *dial, uint64_t deadline,
                       np_stream **out);

/* ---- listeners over a listening socket (fd-listener.c) ----------------
 *
 * A listening socket whose owner (pipe-uds.c, the TCP module) embeds a
 * struct np__fd_listener in its own object and describes itself with a
 * class.  The listener is READABLE while accept(2) may succeed and is
 * cleared when it gives EAGAIN. */

struct np__fd_listener;

/* Returned by a vet hook: close this connection and try the next one. */
#define NP__FD_REFUSE 1

struct np__fd_listener_class {
  /* Vets a freshly accepted fd (non-blocking, close-on-exec) before any
   * byte is read: returns 0 to hand it out, NP__FD_REFUSE to have it
   * closed silently and move on, or NP_E* to have it closed and return
   * that error from np_accept.  May be NULL (accept everything). */
  int (*vet)(struct np__fd_listener *l, int fd);
  /* np_listener_address: writes the NUL-terminated address, returns its
   * length or NP_ENAMETOOLONG. */
  int (*address)(struct np__fd_listener *l, char *buf, size_t len);
  /* Called once by np_listener_close (or np_poll_free) after the socket
   * was removed from the poller and closed: releases what the owner holds
   * (a socket file, a lock) and frees the embedding object. */
  void (*release)(struct np__fd_listener *l);
};

struct np__fd_listener {
  np_listener pub;
  struct np__watch watch;
  np_poll *poll;
  const struct np__fd_listener_class *cls;
  unsigned stream_flags; /* np__fd_flags for accepted streams */
  size_t write_limit;    /* for accepted streams */
  struct np__timer pause; /* out of descriptors: when to try again */
  uint64_t pause_ms;      /* the next pause; 0 while not paused */
  int held_fd; /* accepted and vetted, not yet handed out (or -1) */
};

/* Starts l, embedded in its owner's object, on fd, a bound and listening
 * non-blocking close-on-exec socket: registers l with poll's core under
 * token (interest NP_READABLE) and adds fd to the epoll set.  Accepted
 * streams get stream_flags and write_limit.  Returns 0, after which fd
 * belongs to l and np_listener_close ends in cls->release; or NP_E* with
 * nothing registered and fd and the owner's object still the caller's. */
int np__fd_listener_start(struct np__fd_listener *l, np_poll *poll, int fd,
                          const struct np__fd_listener_class *cls,
                          unsigned stream_flags, size_t write_limit,
                          uint64_t token);

#endif /* NP_UNIX_H */
