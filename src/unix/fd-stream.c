/*
 * A non-blocking socket as an np_stream: byte-mode reads and writes, the
 * write buffer that lets np_close deliver everything without blocking,
 * and the epoll events that drive both.  Message framing is in
 * fd-message.c.
 *
 * The fd sits in the epoll set edge-triggered: every arrival of data (or
 * of the peer's end) is one EPOLLIN event, which becomes one
 * np__source_signal(NP_READABLE), and the core turns that into level,
 * edge or oneshot reports.  EPOLLOUT is added only while the write buffer
 * holds bytes (or a connect is in progress), so an idle stream whose
 * peer reads costs no wake-ups.
 *
 * Writes go straight to the kernel while nothing is buffered; only what
 * the socket refuses is copied.  A bulk pipe writer (a write of
 * DIRECT_MIN or more that filled the socket) gets a send buffer that
 * holds its write limit, after which the backlog stays in the kernel and
 * large writes wait for the buffered tail instead of queueing behind it
 * (byte_write): the promise that np_write takes write_limit bytes holds,
 * without copying every byte of a transfer once more.
 */
#define _GNU_SOURCE /* struct ucred */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd-stream.h"

#define BASE_EVENTS ((uint32_t)(EPOLLIN | EPOLLRDHUP | EPOLLET))

/* Byte-mode writes at least this large are not queued behind bytes that
 * are already buffered, and one that fills the kernel's queue marks the
 * stream as a bulk writer (see byte_write). */
#define DIRECT_MIN (4u * 1024u)
/* How long sends may fail for lack of kernel memory before the stream
 * fails, and the longest delay between two tries meanwhile. */
#define TRANSIENT_MAX_MS 5000u
#define TRANSIENT_DELAY_MAX 100u
/* The most send buffer a bulk pipe asks for (see grow_sndbuf). */
#define SNDBUF_MAX (1024u * 1024u)

static struct np__fd_stream *from_pub(np_stream *p) {
  return NP__CONTAINER_OF(p, struct np__fd_stream, pub);
}

/* Keeps EPOLLOUT in the set exactly while something waits for it. */
static int watch_out(struct np__fd_stream *s) {
  uint32_t want = BASE_EVENTS;
  int err;

  if (s->connecting || (s->out.len > 0 && s->write_err == 0))
    want |= EPOLLOUT;
  if (want == s->epoll_events)
    return 0;
  err = np__epoll_mod(s->poll, &s->watch, want);
  if (err == 0)
    s->epoll_events = want;
  return err;
}

/* Ends a connect that waits: its timer and its dialer go. */
static void end_dial(struct np__fd_stream *s) {
  struct np__fd_dial *d = s->dial;

  s->dial = NULL;
  s->connecting = 0;
  np__timer_stop(np__poll_core(s->poll), &d->timer);
  d->release(d);
}

static void destroy(struct np__fd_stream *s) {
  if (s->closing)
    np__epoll_flushing(s->poll, -1);
  np__timer_stop(np__poll_core(s->poll), &s->linger);
  np__timer_stop(np__poll_core(s->poll), &s->retry);
  if (s->dial != NULL)
    end_dial(s);
  np__source_deregister(&s->pub.src);
  if (s->in_epoll)
    np__epoll_del(s->poll, &s->watch);
  close(s->watch.fd);
  np__wbuf_free(&s->out);
  free(s);
}

/* Tells a writer waiting for room that np_write has news for it: room,
 * or an error it will now return. */
static void wake_writer(struct np__fd_stream *s) {
  if (!s->want_room)
    return;
  s->want_room = 0;
  s->want_empty = 0;
  np__source_signal(&s->pub.src, NP_WRITABLE);
}

/* A send failed for good: what is buffered can never be delivered, and
 * a writer should come and collect the error. */
static void write_failed(struct np__fd_stream *s, int err) {
  s->write_err = err;
  s->want_room = s->want_empty = 0;
  np__wbuf_free(&s->out);
  np__source_signal(&s->pub.src, NP_WRITABLE);
  (void)watch_out(s);
}

/* The kernel lacked memory for a send (ENOBUFS, ENOMEM: a large
 * SEQPACKET record under pressure, say).  That passes: the bytes stay
 * buffered and the send is tried again on a timer, backing off from 1
 * to TRANSIENT_DELAY_MAX ms, since no epoll event announces the end of
 * such a shortage.  Returns non-zero while within TRANSIENT_MAX_MS of
 * the first failure in a row; after that the error is final. */
static int retry_later(struct np__fd_stream *s) {
  uint64_t now = np__now_ms();

  if (s->transient_since == 0) {
    s->transient_since = now;
    s->retry_ms = 1;
  } else if (now - s->transient_since >= TRANSIENT_MAX_MS) {
    return 0;
  }
  s->out_full = 1;
  if (!s->retry.armed) {
    np__timer_start(np__poll_core(s->poll), &s->retry, s->retry_ms);
    if (s->retry_ms < TRANSIENT_DELAY_MAX)
      s->retry_ms *= 2;
  }
  return 1;
}

ssize_t np__fd_send(struct np__fd_stream *s, const void *a, size_t an,
                    const void *b, size_t bn) {
  struct iovec iov[2];
  struct msghdr mh;
  ssize_t n;
  int e, err;

  /* MSG_NOSIGNAL: a vanished peer is NP_EPIPE, never a SIGPIPE. */
  if (bn == 0) {
    /* One buffer: send(2) spares the kernel importing a msghdr. */
    do
      n = send(s->watch.fd, a, an, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
  } else {
    iov[0].iov_base = (void *)a;
    iov[0].iov_len = an;
    iov[1].iov_base = (void *)b;
    iov[1].iov_len = bn;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = 2;
    do
      n = sendmsg(s->watch.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
  }
  if (n >= 0) {
    s->transient_since = 0;
    /* A short stream send means the socket buffer filled up. */
    if ((size_t)n < an + bn)
      s->out_full = 1;
    return n;
  }
  e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK) {
    s->out_full = 1;
    return NP_EAGAIN;
  }
  if ((e == ENOBUFS || e == ENOMEM) && retry_later(s))
    return NP_EAGAIN;
  /* A pipe peer that closed with bytes unread resets the connection;
   * for the writer that is the same vanished peer as EPIPE. */
  if (e == EPIPE || (e == ECONNRESET && (s->flags & NP__FD_PIPE)))
    err = NP_EPIPE;
  else
    err = np__error_from_os(e);
  write_failed(s, err);
  return err;
}

int np__fd_queue(struct np__fd_stream *s, const void *a, size_t an,
                 const void *b, size_t bn) {
  int err = np__wbuf_append(&s->out, a, an, b, bn);

  if (err != 0)
    return err;
  err = watch_out(s);
  if (err != 0)
    s->out.len -= an + bn; /* unwatched bytes would never leave */
  return err;
}

int np__fd_no_room(struct np__fd_stream *s) {
  s->want_room = 1;
  np__source_clear(&s->pub.src, NP_WRITABLE);
  return NP_EAGAIN;
}

ssize_t np__fd_recv(struct np__fd_stream *s, struct iovec *iov, int iovcnt,
                    int flags) {
  struct msghdr mh;
  int resets = 0;
  ssize_t n;

  for (;;) {
    /* One buffer: recv(2) spares the kernel importing a msghdr. */
    if (iovcnt == 1) {
      n = recv(s->watch.fd, iov[0].iov_base, iov[0].iov_len,
               flags | MSG_DONTWAIT);
    } else {
      memset(&mh, 0, sizeof(mh));
      mh.msg_iov = iov;
      mh.msg_iovlen = (size_t)iovcnt;
      n = recvmsg(s->watch.fd, &mh, flags | MSG_DONTWAIT);
    }
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    /* A pipe peer that closed with bytes of ours unread leaves a reset,
     * and SOCK_SEQPACKET reports it before the messages the peer sent
     * first.  This call consumed it; it only says the peer is gone, so
     * the data still queued comes next, then the end. */
    if (errno != ECONNRESET || !(s->flags & NP__FD_PIPE) || resets++ > 0)
      return -1;
  }
}

int np__fd_recv_end(struct np__fd_stream *s, int e) {
  /* The peer closed with bytes of ours unread: for a pipe that is just
   * its end (as a broken pipe is on Windows), after everything it sent. */
  if (e == 0 || (e == ECONNRESET && (s->flags & NP__FD_PIPE))) {
    s->eof = 1;
    return NP_EOF;
  }
  if (e == EAGAIN || e == EWOULDBLOCK) {
    np__source_clear(&s->pub.src, NP_READABLE);
    return NP_EAGAIN;
  }
  return np__error_from_os(e);
}

static int shut_now(struct np__fd_stream *s) {
  s->shut_done = 1;
  /* ENOTCONN: the peer is gone already, and there is nothing to end. */
  if (shutdown(s->watch.fd, SHUT_WR) < 0 && errno != ENOTCONN)
    return np__error_from_errno();
  return 0;
}

/* Hands buffered bytes to the kernel until it is full or they are all
 * sent; then finishes a pending np_shutdown and tells a waiting writer. */
static void flush(struct np__fd_stream *s) {
  while (s->out.len > 0 && !s->out_full && s->write_err == 0) {
    ssize_t n;

    if (s->flags & NP__FD_MESSAGE)
      n = np__fd_msg_flush_one(s);
    else
      n = np__fd_send(s, np__wbuf_head(&s->out), s->out.len, NULL, 0);
    /* Bytes np_write accepted are lost: a writer that is done writing
     * learns it through NP_ERR (a gone peer shows as its end instead). */
    if (n < 0 && n != NP_EAGAIN && n != NP_EPIPE && s->pub.error == 0) {
      s->pub.error = (int)n;
      np__source_signal(&s->pub.src, NP_ERR);
    }
    if (n < 0)
      break;
    np__wbuf_consume(&s->out, (size_t)n);
  }
  if (s->out.len == 0 && s->shut && !s->shut_done && s->write_err == 0)
    (void)shut_now(s);
  if (s->out.len == 0 || (!s->want_empty && s->out.len < s->write_limit))
    wake_writer(s);
  (void)watch_out(s);
}

/* A connect failed for good: every call returns err from now on, and a
 * writer learns it at once. */
static void connect_failed(struct np__fd_stream *s, int err) {
  s->fail = err;
  s->pub.error = err;
  np__wbuf_free(&s->out);
  np__source_signal(&s->pub.src, NP_WRITABLE | NP_ERR);
}

/* The outcome of a non-blocking connect. */
static void connect_done(struct np__fd_stream *s) {
  int e = 0;
  socklen_t len = sizeof(e);

  s->connecting = 0;
  if (getsockopt(s->watch.fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
    e = errno;
  if (e == 0) {
    np__source_signal(&s->pub.src, NP_WRITABLE);
    return;
  }
  connect_failed(s, np__error_from_os(e));
}

/* Frees the stream at once, dropping what it still holds.  A TCP peer
 * is told with a reset (SO_LINGER 0), so that it never takes the missing
 * bytes for a clean end; a pipe's peer sees its end. */
static void abort_now(struct np__fd_stream *s) {
  struct linger lg = {1, 0};

  if (!(s->flags & NP__FD_PIPE))
    (void)setsockopt(s->watch.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  destroy(s);
}

static void linger_expired(struct np__timer *t) {
  abort_now(NP__CONTAINER_OF(t, struct np__fd_stream, linger));
}

/* What discard_input found. */
enum discard { DISCARD_MORE, DISCARD_END, DISCARD_TOO_MUCH };

/* A closed stream that still flushes reads and drops whatever arrives:
 * a peer blocked writing to us (its bytes count against its send buffer
 * until we take them) would otherwise never read what we flush, and the
 * two ends would wait for each other forever.  Reads until the socket is
 * empty (DISCARD_MORE), as the edge-triggered watch requires, or until
 * the peer's end or an error (DISCARD_END).  A peer that has sent
 * NP__LINGER_DISCARD_MAX bytes since the close is not going to read:
 * DISCARD_TOO_MUCH, and the stream is aborted. */
static enum discard discard_input(struct np__fd_stream *s) {
  char scratch[16384];
  ssize_t n;

  for (;;) {
    n = recv(s->watch.fd, scratch, sizeof(scratch), MSG_DONTWAIT);
    if (n > 0 && (s->discarded += (size_t)n) > NP__LINGER_DISCARD_MAX)
      return DISCARD_TOO_MUCH;
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN &&
                   errno != EWOULDBLOCK))
      return DISCARD_END;
    if (n < 0 && errno != EINTR)
      return DISCARD_MORE;
  }
}

/* A closed stream's turn: drops input, and frees the stream once every
 * byte is out and, for TCP, the peer has ended too.  A TCP socket closed
 * while input is unread (or arrives later) answers with a reset, and the
 * peer's system then drops what we sent and it has not read yet; so TCP
 * sends its end (the FIN, after the bytes) and waits for the peer's. */
static void closing_event(struct np__fd_stream *s, uint32_t ev) {
  enum discard d = DISCARD_MORE;

  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    d = discard_input(s);
  if (d == DISCARD_TOO_MUCH)
    abort_now(s);
  else if (s->out.len == 0 &&
           ((s->flags & NP__FD_PIPE) || d == DISCARD_END || s->eof ||
            s->write_err != 0 || (ev & (EPOLLHUP | EPOLLERR))))
    destroy(s);
}

/* After a transient send failure: try the buffered bytes again.  A
 * closed stream then ends by the same rule as after an epoll event (TCP
 * still waits for the peer's end). */
static void retry_send(struct np__timer *t) {
  struct np__fd_stream *s = NP__CONTAINER_OF(t, struct np__fd_stream, retry);

  s->out_full = 0;
  flush(s);
  if (s->closing)
    closing_event(s, 0);
}

static void on_event(struct np__watch *w, uint32_t ev) {
  struct np__fd_stream *s = NP__CONTAINER_OF(w, struct np__fd_stream, watch);
  uint32_t bits = 0;

  if (s->connecting && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
    connect_done(s);
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    bits |= NP_READABLE;
  if (ev & EPOLLHUP)
    bits |= NP_HUP;
  if (!s->connecting && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    s->out_full = 0;
    flush(s);
  }
  if (s->closing) {
    closing_event(s, ev);
    return;
  }
  if (bits != 0)
    np__source_signal(&s->pub.src, bits);
}

/* A bulk writer filled the kernel's queue: a pipe's send buffer grows,
 * once, to hold the stream's write limit (up to SNDBUF_MAX, and as far as
 * net.core.wmem_max lets it), so that the backlog waits in the kernel,
 * taken straight from the caller's memory, and each wake-up moves more.
 * Chatty streams keep the default, which packs small writes better; TCP
 * is left to its own tuning.  Returns non-zero when the buffer grew. */
static int grow_sndbuf(struct np__fd_stream *s) {
  size_t limit = s->write_limit < SNDBUF_MAX ? s->write_limit : SNDBUF_MAX;
  /* The kernel counts its own overhead too: an eighth more holds the
   * limit in payload. */
  size_t want = limit + limit / 8;
  int size = 0, ask = (int)(want / 2); /* Linux doubles what it is asked */
  socklen_t len = sizeof(size);
  int before;

  s->sndbuf_grown = 1;
  if (!(s->flags & NP__FD_PIPE) ||
      getsockopt(s->watch.fd, SOL_SOCKET, SO_SNDBUF, &size, &len) < 0)
    return 0;
  before = size;
  if ((size_t)size < want &&
      (setsockopt(s->watch.fd, SOL_SOCKET, SO_SNDBUF, &ask, sizeof(ask)) < 0 ||
       getsockopt(s->watch.fd, SOL_SOCKET, SO_SNDBUF, &size, &len) < 0))
    return 0;
  s->kernel_holds_limit = (size_t)size >= s->write_limit + s->write_limit / 8;
  return size > before;
}

static ptrdiff_t byte_write(struct np__fd_stream *s, const unsigned char *buf,
                            size_t len) {
  size_t sent = 0, room;
  int err;

  if (s->out.len == 0 && !s->out_full && !s->connecting) {
    /* Straight to the kernel when nothing is queued ahead of these
     * bytes; the buffer takes only what the socket cannot. */
    ssize_t n = np__fd_send(s, buf, len, NULL, 0);

    if (n < 0 && n != NP_EAGAIN)
      return n;
    if (n > 0)
      sent = (size_t)n;
    if (sent < len && len >= DIRECT_MIN && !s->sndbuf_grown &&
        grow_sndbuf(s)) {
      /* The queue has room again, and no EPOLLOUT would say so. */
      s->out_full = 0;
      n = np__fd_send(s, buf + sent, len - sent, NULL, 0);
      if (n < 0 && n != NP_EAGAIN)
        return sent > 0 ? (ptrdiff_t)sent : n;
      if (n > 0)
        sent += (size_t)n;
    }
    if (sent == len)
      return (ptrdiff_t)len;
  } else if (s->out.len > 0 && len >= DIRECT_MIN && s->kernel_holds_limit &&
             !s->connecting) {
    /* The kernel's queue, full, holds the write limit by itself, so the
     * stream's buffers are full: a large write waits until the bytes
     * queued here are gone too (WRITABLE comes back then), and goes to
     * the kernel straight from the caller's memory.  Queued behind them,
     * every byte of a bulk transfer would be copied once more.  Small
     * writes still queue, and leave together as one large send. */
    s->want_empty = 1;
    return np__fd_no_room(s);
  }
  /* The rest of this call, up to the limit: the caller may reuse its
   * memory as soon as np_write returns. */
  room = s->out.len < s->write_limit ? s->write_limit - s->out.len : 0;
  if (room > len - sent)
    room = len - sent;
  if (room == 0)
    return sent > 0 ? (ptrdiff_t)sent : np__fd_no_room(s);
  err = np__fd_queue(s, buf + sent, room, NULL, 0);
  if (err != 0)
    return sent > 0 ? (ptrdiff_t)sent : err;
  return (ptrdiff_t)(sent + room);
}

static ptrdiff_t stream_read(np_stream *p, void *buf, size_t len) {
  struct np__fd_stream *s = from_pub(p);
  struct iovec iov;
  ssize_t n;

  if (s->fail != 0)
    return s->fail;
  if (s->connecting)
    return np__fd_recv_end(s, EAGAIN);
  if (s->flags & NP__FD_MESSAGE)
    return np__fd_msg_read(s, buf, len);
  if (len == 0)
    return 0;
  if (s->eof)
    return NP_EOF;
  iov.iov_base = buf;
  iov.iov_len = len;
  n = np__fd_recv(s, &iov, 1, 0);
  if (n > 0)
    return n;
  return np__fd_recv_end(s, n == 0 ? 0 : errno);
}

static ptrdiff_t stream_write(np_stream *p, const void *buf, size_t len) {
  struct np__fd_stream *s = from_pub(p);

  if (s->fail != 0)
    return s->fail;
  if (s->shut)
    return NP_ESHUTDOWN;
  if (s->write_err != 0)
    return s->write_err;
  /* A pipe that waits for its server takes nothing yet: the caller hears
   * NP_WRITABLE once it is connected. */
  if (s->dial != NULL)
    return np__fd_no_room(s);
  if (s->flags & NP__FD_MESSAGE)
    return np__fd_msg_write(s, buf, len);
  if (len == 0)
    return 0;
  return byte_write(s, buf, len);
}

static int stream_shutdown(np_stream *p) {
  struct np__fd_stream *s = from_pub(p);

  if (s->fail != 0)
    return s->fail;
  if (s->shut)
    return 0;
  s->shut = 1;
  /* A writer waiting for room would wait forever: its answer is now
   * NP_ESHUTDOWN. */
  wake_writer(s);
  if (s->out.len > 0 || s->connecting || s->write_err != 0)
    return 0; /* flush() ends the stream after the buffered bytes */
  return shut_now(s);
}

static int stream_peer(np_stream *p, np_peer *peer) {
  struct np__fd_stream *s = from_pub(p);
  struct ucred uc;
  socklen_t len = sizeof(uc);

  if (!(s->flags & NP__FD_PIPE))
    return NP_ENOTSUP;
  if (getsockopt(s->watch.fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
    return np__error_from_errno();
  /* pid 0: the peer lives in another pid namespace. */
  peer->pid = uc.pid > 0 ? (int64_t)uc.pid : -1;
  peer->uid = (int64_t)uc.uid;
  peer->gid = (int64_t)uc.gid;
  return 0;
}

static int stream_peer_id(np_stream *p, struct np__peer_id *id) {
  np_peer peer = {-1, -1, -1};
  int err = stream_peer(p, &peer);

  if (err == 0)
    id->uid = peer.uid;
  return err;
}

/* Non-zero when a closed stream has nothing left to do: no bytes to
 * send, and for TCP no end to exchange (the connection never came, or
 * both ends are over already). */
static int close_at_once(const struct np__fd_stream *s) {
  if (s->out.len > 0)
    return 0;
  return (s->flags & NP__FD_PIPE) || s->connecting || s->fail != 0 ||
         s->write_err != 0 || (s->eof && s->shut_done);
}

static void stream_close(np_stream *p) {
  struct np__fd_stream *s = from_pub(p);

  if (close_at_once(s)) {
    destroy(s);
    return;
  }
  /* Bytes np_write accepted are still to go (or, on TCP, the ends are
   * still to be exchanged).  The stream stays in the epoll set and in the
   * core's list (so that np_poll_free can free it), but with no
   * interest, so its token is never reported again. */
  s->closing = 1;
  np__epoll_flushing(s->poll, 1);
  (void)np__source_set_interest(&s->pub.src, 0, 0);
  /* The delivery is bounded in time: a peer that never reads does not
   * keep the stream, its descriptor and its buffer for good. */
  if (s->pub.linger_ms >= 0)
    np__timer_start(np__poll_core(s->poll), &s->linger,
                    (uint64_t)s->pub.linger_ms);
  if (s->flags & NP__FD_PIPE) {
    /* We will not read any more: the peer's writes fail with EPIPE now
     * instead of filling a queue that nobody drains. */
    (void)shutdown(s->watch.fd, SHUT_RD);
  } else {
    /* TCP has no such refusal: our end goes after the bytes (flush()
     * sends it once the buffer is empty), and closing_event waits for
     * the peer's. */
    s->shut = 1;
    if (s->out.len == 0 && !s->shut_done)
      (void)shut_now(s);
  }
  closing_event(s, EPOLLIN);
}

static void stream_abort(np_stream *p) {
  abort_now(from_pub(p));
}

static void orphan_close(struct np__source *src) {
  destroy(NP__CONTAINER_OF(src, struct np__fd_stream, pub.src));
}

static const struct np__stream_ops stream_ops = {
    stream_read, stream_write,  stream_shutdown,
    stream_peer, stream_close,  stream_abort,
    stream_peer_id, NULL};

static const struct np__source_ops source_ops = {NULL, orphan_close};

/* A new stream for fd, not yet registered anywhere.  Returns 0 with *out
 * or NP_E* with nothing allocated. */
static int stream_alloc(np_poll *poll, int fd, unsigned flags,
                        size_t write_limit, struct np__fd_stream **out) {
  struct np__fd_stream *s;
  int err;

  if (write_limit == 0)
    return NP_EINVAL;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NP_ENOMEM;
  s->pub.ops = &stream_ops;
  s->watch.fd = fd;
  s->watch.on_event = on_event;
  s->poll = poll;
  s->flags = flags;
  s->write_limit = write_limit;
  s->connecting = (flags & NP__FD_CONNECTING) != 0;
  np__timer_init(&s->linger, linger_expired);
  np__timer_init(&s->retry, retry_send);
  s->epoll_events = BASE_EVENTS | (s->connecting ? EPOLLOUT : 0u);
  if ((flags & NP__FD_MESSAGE) && (err = np__fd_msg_setup(s)) != 0) {
    free(s);
    return err;
  }
  *out = s;
  return 0;
}

int np__fd_stream_new(np_poll *poll, int fd, unsigned flags,
                      size_t write_limit, uint64_t token, uint32_t interest,
                      np_stream **out) {
  struct np__fd_stream *s;
  int err = stream_alloc(poll, fd, flags, write_limit, &s);

  if (err != 0)
    return err;
  if ((err = np__epoll_add(poll, &s->watch, s->epoll_events)) != 0) {
    free(s);
    return err;
  }
  s->in_epoll = 1;
  np__source_register(np__poll_core(poll), &s->pub.src, &source_ops, token,
                      interest);
  /* Data already waiting is reported by epoll's first edge. */
  if (!s->connecting)
    np__source_signal(&s->pub.src, NP_WRITABLE);
  *out = &s->pub;
  return 0;
}

/* The dialer connected: the stream joins the epoll set and starts. */
static void dial_connected(struct np__fd_stream *s) {
  int err = np__epoll_add(s->poll, &s->watch, s->epoll_events);

  if (err != 0) {
    connect_failed(s, err);
    return;
  }
  s->in_epoll = 1;
  np__source_signal(&s->pub.src, NP_WRITABLE);
  /* Applies an np_shutdown made while connecting. */
  flush(s);
}

static void dial_fire(struct np__timer *t) {
  struct np__fd_dial *d = NP__CONTAINER_OF(t, struct np__fd_dial, timer);
  struct np__fd_stream *s = d->stream;
  int err = d->attempt(d, s->watch.fd);
  uint64_t now;

  if (err == NP_EAGAIN) {
    now = np__now_ms();
    if (now < d->deadline) {
      uint64_t left = d->deadline - now;

      /* Never past the deadline: the last try comes right at it. */
      np__timer_start(np__poll_core(s->poll), t,
                      d->delay_ms < left ? d->delay_ms : left);
      if (d->delay_ms < NP__DIAL_DELAY_MAX)
        d->delay_ms = d->delay_ms * 2 < NP__DIAL_DELAY_MAX
                          ? d->delay_ms * 2
                          : NP__DIAL_DELAY_MAX;
      return;
    }
    err = NP_ETIMEDOUT;
  }
  end_dial(s);
  if (err == 0)
    dial_connected(s);
  else
    connect_failed(s, err);
}

int np__fd_stream_dial(np_poll *poll, int fd, unsigned flags,
                       size_t write_limit, uint64_t token, uint32_t interest,
                       struct np__fd_dial *dial, uint64_t deadline,
                       np_stream **out) {
  struct np__fd_stream *s;
  int err = stream_alloc(poll, fd, flags & ~(unsigned)NP__FD_CONNECTING,
                         write_limit, &s);

  if (err != 0)
    return err;
  s->connecting = 1;
  s->dial = dial;
  dial->stream = s;
  dial->deadline = deadline;
  dial->delay_ms = 1;
  np__timer_init(&dial->timer, dial_fire);
  np__source_register(np__poll_core(poll), &s->pub.src, &source_ops, token,
                      interest);
  /* The first retry comes with the next wait: a busy server that is
   * accepting frees its slot within microseconds, and the raw loops'
   * blocking connect gets in at that moment too. */
  np__timer_start(np__poll_core(poll), &dial->timer, 0);
  *out = &s->pub;
  return 0;
}
