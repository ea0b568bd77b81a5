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

static void destroy(struct np__fd_stream *s) {
  np__source_deregister(&s->pub.src);
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
  np__source_signal(&s->pub.src, NP_WRITABLE);
}

/* A send failed for good: what is buffered can never be delivered, and
 * a writer should come and collect the error. */
static void write_failed(struct np__fd_stream *s, int err) {
  s->write_err = err;
  s->want_room = 0;
  np__wbuf_free(&s->out);
  np__source_signal(&s->pub.src, NP_WRITABLE);
  (void)watch_out(s);
}

ssize_t np__fd_send(struct np__fd_stream *s, const void *a, size_t an,
                    const void *b, size_t bn) {
  struct iovec iov[2];
  struct msghdr mh;
  ssize_t n;
  int e, err;

  iov[0].iov_base = (void *)a;
  iov[0].iov_len = an;
  iov[1].iov_base = (void *)b;
  iov[1].iov_len = bn;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = iov;
  mh.msg_iovlen = bn > 0 ? 2 : 1;
  /* MSG_NOSIGNAL: a vanished peer is NP_EPIPE, never a SIGPIPE. */
  do
    n = sendmsg(s->watch.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
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

  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = iov;
  mh.msg_iovlen = (size_t)iovcnt;
  for (;;) {
    n = recvmsg(s->watch.fd, &mh, flags | MSG_DONTWAIT);
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
    if (n < 0)
      break;
    np__wbuf_consume(&s->out, (size_t)n);
  }
  if (s->out.len == 0 && s->shut && !s->shut_done && s->write_err == 0)
    (void)shut_now(s);
  if (s->out.len < s->write_limit)
    wake_writer(s);
  (void)watch_out(s);
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
  s->fail = np__error_from_os(e);
  s->pub.error = s->fail;
  np__wbuf_free(&s->out);
  np__source_signal(&s->pub.src, NP_WRITABLE | NP_ERR);
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
    /* Everything left, or nobody is there to take it. */
    if (s->out.len == 0)
      destroy(s);
    return;
  }
  if (bits != 0)
    np__source_signal(&s->pub.src, bits);
}

static ptrdiff_t byte_write(struct np__fd_stream *s, const unsigned char *buf,
                            size_t len) {
  size_t sent = 0, room;
  int err;

  /* Straight to the kernel when nothing is queued ahead of these bytes;
   * the buffer takes only what the socket cannot. */
  if (s->out.len == 0 && !s->out_full && !s->connecting) {
    ssize_t n = np__fd_send(s, buf, len, NULL, 0);

    if (n < 0 && n != NP_EAGAIN)
      return n;
    if (n > 0)
      sent = (size_t)n;
    if (sent == len)
      return (ptrdiff_t)len;
  }
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

static void stream_close(np_stream *p) {
  struct np__fd_stream *s = from_pub(p);

  if (s->out.len == 0) {
    destroy(s);
    return;
  }
  /* Bytes np_write accepted are still to go.  The stream stays in the
   * epoll set and in the core's list (so that np_poll_free can free it),
   * but with no interest, so its token is never reported again. */
  s->closing = 1;
  (void)np__source_set_interest(&s->pub.src, 0, 0);
  /* We will not read any more: the peer's writes fail with EPIPE now
   * instead of filling a queue that nobody drains. */
  if (!s->connecting)
    (void)shutdown(s->watch.fd, SHUT_RD);
}

static void orphan_close(struct np__source *src) {
  destroy(NP__CONTAINER_OF(src, struct np__fd_stream, pub.src));
}

static const struct np__stream_ops stream_ops = {
    stream_read, stream_write, stream_shutdown, stream_peer, stream_close};

static const struct np__source_ops source_ops = {NULL, orphan_close};

int np__fd_stream_new(np_poll *poll, int fd, unsigned flags,
                      size_t write_limit, uint64_t token, uint32_t interest,
                      np_stream **out) {
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
  if ((flags & NP__FD_MESSAGE) && (err = np__fd_msg_setup(s)) != 0)
    goto fail;
  s->epoll_events = BASE_EVENTS | (s->connecting ? EPOLLOUT : 0u);
  if ((err = np__epoll_add(poll, &s->watch, s->epoll_events)) != 0)
    goto fail;
  np__source_register(np__poll_core(poll), &s->pub.src, &source_ops, token,
                      interest);
  /* Data already waiting is reported by epoll's first edge. */
  if (!s->connecting)
    np__source_signal(&s->pub.src, NP_WRITABLE);
  *out = &s->pub;
  return 0;
fail:
  free(s);
  return err;
}
