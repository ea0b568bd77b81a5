/*
 * The socket stream's state, shared by its byte-mode core (fd-stream.c),
 * its message framing (fd-message.c) and its write buffer (fd-wbuf.c).
 * Nothing outside these three files looks inside.
 */
#ifndef NP_FD_STREAM_H
#define NP_FD_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "unix.h"

/* Bytes accepted by np_write and not yet taken by the kernel: a linear
 * buffer data[head, head + len). */
struct np__wbuf {
  unsigned char *data;
  size_t head, len, cap;
};

struct np__fd_stream {
  np_stream pub;
  struct np__watch watch;
  np_poll *poll;
  unsigned flags;        /* np__fd_flags */
  uint32_t epoll_events; /* what the epoll set holds for the fd now */
  size_t write_limit;
  size_t msg_max;           /* message mode: largest payload np_write takes */
  struct np__wbuf out;      /* byte mode: bytes; message mode: records */
  int fail;                 /* a failed connect, returned by every call */
  int write_err;            /* sticky: NP_EPIPE once the peer is gone */
  unsigned char eof;        /* the peer's end arrived: reads give NP_EOF */
  unsigned char out_full;   /* send gave EAGAIN: wait for EPOLLOUT */
  unsigned char want_room;  /* np_write gave NP_EAGAIN: signal room */
  unsigned char want_empty; /* ... only once the buffer is empty */
  unsigned char sndbuf_grown;       /* grow_sndbuf ran: a bulk writer */
  unsigned char kernel_holds_limit; /* ... and SO_SNDBUF >= write_limit */
  unsigned char shut;               /* np_shutdown was called */
  unsigned char shut_done;          /* shutdown(SHUT_WR) was issued */
  unsigned char closing;            /* np_close was called; flushing */
  unsigned char connecting;
  unsigned char in_epoll;   /* the fd is in the epoll set */
  struct np__fd_dial *dial; /* a connect that waits, or NULL */
  struct np__timer linger;  /* closing: the end of np_close's delivery */
  struct np__timer retry;   /* the next send after a transient failure */
  uint64_t transient_since; /* np__now_ms() of the first such failure */
  uint64_t retry_ms;        /* the next retry's delay */
  size_t discarded;         /* closing: input read and dropped */
};

/* ---- fd-wbuf.c --------------------------------------------------------- */

/* Appends n bytes (a then b, either may be empty).  Returns 0 or
 * NP_ENOMEM with the buffer unchanged. */
int np__wbuf_append(struct np__wbuf *w, const void *a, size_t an,
                    const void *b, size_t bn);
/* Drops the first n bytes; an emptied buffer gives back large storage. */
void np__wbuf_consume(struct np__wbuf *w, size_t n);
/* Frees the storage and empties the buffer. */
void np__wbuf_free(struct np__wbuf *w);
/* The first unsent byte. */
static inline unsigned char *np__wbuf_head(const struct np__wbuf *w) {
  return w->data + w->head;
}

/* ---- fd-stream.c, for fd-message.c ------------------------------------- */

/* Sends a then b as one send (one message in message mode) without
 * blocking or raising SIGPIPE.  Returns the count sent (a short count
 * marks the socket full), NP_EAGAIN (marks it full), or a final NP_E*:
 * NP_EPIPE when the peer is gone.  A final error is kept in write_err
 * for every later write, the buffer is dropped and WRITABLE signalled. */
ssize_t np__fd_send(struct np__fd_stream *s, const void *a, size_t an,
                    const void *b, size_t bn);
/* Queues n more bytes (in message mode a record) in the write buffer and
 * makes sure EPOLLOUT is watched.  Returns 0 or NP_E*. */
int np__fd_queue(struct np__fd_stream *s, const void *a, size_t an,
                 const void *b, size_t bn);
/* np_write found no room: clears WRITABLE and remembers to signal it when
 * room frees.  Returns NP_EAGAIN. */
int np__fd_no_room(struct np__fd_stream *s);
/* Receives into iov[0, iovcnt) with flags (plus MSG_DONTWAIT), past
 * EINTR.  Returns what recvmsg(2) returns, with errno set on -1. */
ssize_t np__fd_recv(struct np__fd_stream *s, struct iovec *iov, int iovcnt,
                    int flags);
/* A receive failed with errno e, or returned 0 (e == 0): sets the EOF
 * state or clears READABLE as the error means.  Returns NP_EOF,
 * NP_EAGAIN or another NP_E*. */
int np__fd_recv_end(struct np__fd_stream *s, int e);

/* ---- fd-message.c ------------------------------------------------------ */

/* Sizes the socket's send buffer for large messages and stores the
 * largest payload in s->msg_max.  Returns 0 or NP_E*. */
int np__fd_msg_setup(struct np__fd_stream *s);
/* np_read and np_write in message mode, after the common checks. */
ptrdiff_t np__fd_msg_read(struct np__fd_stream *s, void *buf, size_t len);
ptrdiff_t np__fd_msg_write(struct np__fd_stream *s, const void *buf,
                           size_t len);
/* Sends the first buffered record.  Returns the record's size in the
 * buffer once it is sent, NP_EAGAIN, or NP_E*. */
ssize_t np__fd_msg_flush_one(struct np__fd_stream *s);

#endif /* NP_FD_STREAM_H */
