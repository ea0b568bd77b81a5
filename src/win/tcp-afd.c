/*
 * TCP streams for the Windows backend: non-blocking Winsock calls, with
 * readiness from AFD polls (afd.c) on the poller's port.
 *
 * A stream's readable and writable flags say what the last poll (or
 * call) showed.  A poll is kept in flight only for a wanted condition
 * that is not known to hold, so a busy stream costs no polls at all; a
 * call that meets WSAEWOULDBLOCK clears its flag and re-arms the poll.
 * The kernel's socket buffers are the stream's buffers: np_write hands
 * bytes straight to send(), and closesocket still delivers what they
 * hold.  So np_close leaves nothing in the library to linger over: the
 * system bounds that delivery itself.  np_abort resets the connection
 * instead (Wine closes gracefully all the same).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>

#include "afd.h"
#include "tcp.h"

#define READ_EVENTS (NP__AFD_RECEIVE | NP__AFD_DISCONNECT | NP__AFD_ABORT)
#define WRITE_EVENTS (NP__AFD_SEND | NP__AFD_ABORT)
#define CONNECT_EVENTS (NP__AFD_SEND | NP__AFD_CONNECT_FAIL)

struct tcp_stream {
  np_stream pub;
  struct np__afd_sock afd;
  SOCKET sock;
  struct addrinfo *addrs; /* connect: every address, freed when done */
  struct addrinfo *next;  /* connect: the address to try after this one */
  int failed;             /* connect failed: read and write return it */
  unsigned char connecting, readable, writable;
  unsigned char peer_fin, shut, hup;
};

static struct tcp_stream *stream_of(np_stream *s) {
  return NP__CONTAINER_OF(s, struct tcp_stream, pub);
}

/* The peer is gone, however the stack puts it: for a writer that is
 * NP_EPIPE, as with pipes. */
static int peer_gone(int wsa_err) {
  return wsa_err == WSAECONNRESET || wsa_err == WSAECONNABORTED ||
         wsa_err == WSAESHUTDOWN;
}

/* Sends the FIN after what the socket holds.  Returns 0 or NP_E*. */
static int shut_now(struct tcp_stream *s) {
  int err;

  if (shutdown(s->sock, SD_SEND) == 0)
    return 0;
  err = WSAGetLastError();
  return peer_gone(err) ? NP_EPIPE : np__error_from_win32((DWORD)err);
}

/* Polls for what the user waits for and is not known to hold.  A connect
 * in progress is always watched: its outcome decides everything else. */
static void stream_rearm(struct tcp_stream *s) {
  uint32_t interest = s->pub.src.interest;
  ULONG want = 0;
  int err;

  if (s->connecting) {
    want = CONNECT_EVENTS;
  } else if (!s->hup) {
    if ((interest & NP_READABLE) && !s->readable)
      want |= READ_EVENTS;
    if ((interest & NP_WRITABLE) && !s->writable)
      want |= WRITE_EVENTS;
  }
  if ((err = np__afd_sock_want(&s->afd, want)) != 0) {
    /* Without a poll the stream would go silent: report the error, and
     * let read and write meet it themselves. */
    s->pub.error = err;
    s->readable = s->writable = 1;
    np__source_signal(&s->pub.src, NP_READABLE | NP_WRITABLE | NP_ERR);
  }
}

/* Starts connecting to s->next and the addresses after it, skipping any
 * that fail at once.  Returns 0 when one is in progress (or made). */
static int connect_next(struct tcp_stream *s) {
  int err = NP_EADDRNOTAVAIL;

  while (s->next != NULL) {
    struct addrinfo *ai = s->next;
    SOCKET sock;

    s->next = ai->ai_next;
    if ((err = np__tcp_socket(ai->ai_family, &sock)) != 0)
      continue;
    np__tcp_tune(sock);
    if (connect(sock, ai->ai_addr, (int)ai->ai_addrlen) == 0 ||
        WSAGetLastError() == WSAEWOULDBLOCK) {
      s->sock = sock;
      return 0;
    }
    err = np__error_from_win32((DWORD)WSAGetLastError());
    closesocket(sock);
  }
  return err;
}

static void connect_done(struct tcp_stream *s) {
  s->connecting = 0;
  freeaddrinfo(s->addrs);
  s->addrs = s->next = NULL;
}

/* The connect failed with err: try the next address (on the same AFD
 * state, now idle), or report the failure once and for all. */
static void connect_failed(struct tcp_stream *s, int err) {
  closesocket(s->sock);
  s->sock = INVALID_SOCKET;
  if (s->next != NULL && (err = connect_next(s)) == 0 &&
      (err = np__afd_sock_rebind(&s->afd, s->sock)) == 0)
    return;
  connect_done(s);
  s->failed = err;
  s->pub.error = err;
  s->readable = s->writable = s->hup = 1;
  np__source_signal(&s->pub.src, NP_READABLE | NP_WRITABLE | NP_HUP | NP_ERR);
}

/* Why the connect failed: AFD's status for the socket, else the
 * socket's own error, as select()-based code reads it. */
static int connect_error(SOCKET sock, DWORD status) {
  int so_error = 0, len = sizeof(so_error);

  if (status != 0)
    return np__error_from_win32(status);
  if (getsockopt(sock, SOL_SOCKET, SO_ERROR, (char *)&so_error, &len) != 0)
    return np__error_from_win32((DWORD)WSAGetLastError());
  return so_error != 0 ? np__error_from_win32((DWORD)so_error) : NP_EIO;
}

static void on_connect_events(struct tcp_stream *s, ULONG ev, DWORD err) {
  if (ev & NP__AFD_CONNECT_FAIL) {
    connect_failed(s, connect_error(s->sock, err));
  } else if (ev & NP__AFD_SEND) {
    connect_done(s);
    /* An np_shutdown during the connect: the writer learns of any failure
     * from its next write. */
    if (s->shut)
      (void)shut_now(s);
    s->writable = 1;
    np__source_signal(&s->pub.src, NP_WRITABLE);
  } else if (err != 0) {
    connect_failed(s, np__error_from_win32(err));
  }
}

/* A reset ends both directions; a FIN ends the stream once we have shut
 * down writing too, as epoll's EPOLLHUP says.  Returns NP_HUP when the
 * stream has just ended, so that the transition is signalled once. */
static uint32_t hang_up(struct tcp_stream *s, int reset) {
  if (s->hup || !(reset || (s->peer_fin && s->shut)))
    return 0;
  s->hup = 1;
  return NP_HUP;
}

static void stream_on_events(struct np__afd_sock *as, ULONG ev, DWORD err) {
  struct tcp_stream *s = NP__CONTAINER_OF(as, struct tcp_stream, afd);
  uint32_t bits = 0;

  if (s->connecting) {
    on_connect_events(s, ev, err);
    stream_rearm(s);
    return;
  }
  if (ev & (NP__AFD_RECEIVE | NP__AFD_DISCONNECT | NP__AFD_ABORT)) {
    s->readable = 1;
    bits |= NP_READABLE;
  }
  if (ev & (NP__AFD_SEND | NP__AFD_ABORT)) {
    s->writable = 1;
    bits |= NP_WRITABLE;
  }
  if (ev & NP__AFD_DISCONNECT)
    s->peer_fin = 1;
  bits |= hang_up(s, (ev & NP__AFD_ABORT) != 0);
  if (ev == 0 && err != 0) {
    s->pub.error = np__error_from_win32(err);
    s->readable = s->writable = 1;
    bits |= NP_READABLE | NP_WRITABLE | NP_ERR;
  }
  if (bits != 0)
    np__source_signal(&s->pub.src, bits);
  stream_rearm(s);
}

/* The call met WSAEWOULDBLOCK: flag no longer holds; poll for it. */
static ptrdiff_t would_block(struct tcp_stream *s, unsigned char *flag,
                             uint32_t bit) {
  *flag = 0;
  np__source_clear(&s->pub.src, bit);
  stream_rearm(s);
  return NP_EAGAIN;
}

static ptrdiff_t stream_read(np_stream *ps, void *buf, size_t len) {
  struct tcp_stream *s = stream_of(ps);
  int n, err;

  if (s->failed != 0)
    return s->failed;
  if (s->connecting)
    return NP_EAGAIN;
  if (len == 0)
    return 0;
  n = recv(s->sock, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
  if (n > 0)
    return n;
  if (n == 0) {
    /* recv keeps returning 0 after the FIN, so NP_EOF repeats. */
    s->peer_fin = 1;
    if (hang_up(s, 0) != 0)
      np__source_signal(&s->pub.src, NP_HUP);
    return NP_EOF;
  }
  err = WSAGetLastError();
  if (err == WSAEWOULDBLOCK)
    return would_block(s, &s->readable, NP_READABLE);
  return np__error_from_win32((DWORD)err);
}

static ptrdiff_t stream_write(np_stream *ps, const void *buf, size_t len) {
  struct tcp_stream *s = stream_of(ps);
  int n, err;

  if (s->failed != 0)
    return s->failed;
  if (s->shut)
    return NP_ESHUTDOWN;
  if (s->connecting)
    return NP_EAGAIN;
  if (len == 0)
    return 0;
  n = send(s->sock, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
  if (n >= 0)
    return n;
  err = WSAGetLastError();
  if (err == WSAEWOULDBLOCK)
    return would_block(s, &s->writable, NP_WRITABLE);
  if (peer_gone(err))
    return NP_EPIPE;
  return np__error_from_win32((DWORD)err);
}

static int stream_shutdown(np_stream *ps) {
  struct tcp_stream *s = stream_of(ps);
  int err;

  if (s->failed != 0)
    return s->failed;
  if (s->shut)
    return 0;
  /* During a connect the FIN waits for the connection, as on POSIX. */
  if (!s->connecting && (err = shut_now(s)) != 0)
    return err;
  s->shut = 1;
  if (hang_up(s, 0) != 0)
    np__source_signal(&s->pub.src, NP_HUP);
  return 0;
}

static int stream_peer(np_stream *ps, np_peer *peer) {
  NP__UNUSED(ps);
  NP__UNUSED(peer);
  return NP_ENOTSUP;
}

static void stream_free(struct np__afd_sock *as) {
  struct tcp_stream *s = NP__CONTAINER_OF(as, struct tcp_stream, afd);

  if (s->addrs != NULL)
    freeaddrinfo(s->addrs);
  free(s);
}

static void stream_close(np_stream *ps) {
  struct tcp_stream *s = stream_of(ps);

  np__source_deregister(&s->pub.src);
  /* Without SO_LINGER, closesocket returns at once and the stack still
   * sends what the socket holds, then the FIN. */
  if (s->sock != INVALID_SOCKET)
    closesocket(s->sock);
  s->sock = INVALID_SOCKET;
  np__afd_sock_close(&s->afd);
}

/* np_abort: a linger of zero makes closesocket reset the connection and
 * drop what the socket still holds. */
static void stream_abort(np_stream *ps) {
  struct tcp_stream *s = stream_of(ps);
  struct linger lg = {1, 0};

  if (s->sock != INVALID_SOCKET)
    (void)setsockopt(s->sock, SOL_SOCKET, SO_LINGER, (const char *)&lg,
                     sizeof(lg));
  stream_close(ps);
}

static void stream_interest_changed(struct np__source *src) {
  stream_rearm(NP__CONTAINER_OF(src, struct tcp_stream, pub.src));
}

static void stream_close_orphan(struct np__source *src) {
  stream_close(&NP__CONTAINER_OF(src, struct tcp_stream, pub.src)->pub);
}

static const struct np__stream_ops stream_ops = {
    stream_read, stream_write, stream_shutdown,
    stream_peer, stream_close, stream_abort, NULL, NULL};
static const struct np__source_ops stream_source_ops = {
    stream_interest_changed, stream_close_orphan};

static struct tcp_stream *stream_alloc(void) {
  struct tcp_stream *s = calloc(1, sizeof(*s));

  if (s != NULL)
    s->sock = INVALID_SOCKET;
  return s;
}

/* Frees a stream that was never registered. */
static void stream_destroy(struct tcp_stream *s) {
  if (s->sock != INVALID_SOCKET)
    closesocket(s->sock);
  stream_free(&s->afd);
}

/* Registers s, whose socket is connected or connecting, with token and
 * interest.  Returns 0, or NP_E* after destroying s. */
static int stream_start(np_poll *poll, struct tcp_stream *s, uint64_t token,
                        uint32_t interest, np_stream **out) {
  int err =
      np__afd_sock_open(poll, &s->afd, s->sock, stream_on_events, stream_free);

  if (err != 0) {
    stream_destroy(s);
    return err;
  }
  s->pub.ops = &stream_ops;
  np__source_register(np__poll_core(poll), &s->pub.src, &stream_source_ops,
                      token, interest);
  if (!s->connecting) {
    /* A new connection's send buffer is empty. */
    s->writable = 1;
    np__source_signal(&s->pub.src, NP_WRITABLE);
  }
  stream_rearm(s);
  *out = &s->pub;
  return 0;
}

int np__tcp_connect(np_poll *poll, const struct np__address *addr,
                    const struct np__opts *opts, uint64_t token,
                    uint32_t interest, np_stream **out) {
  struct tcp_stream *s;
  int err;

  NP__UNUSED(opts);
  if ((err = np__wsa_init()) != 0)
    return err;
  if ((s = stream_alloc()) == NULL)
    return NP_ENOMEM;
  /* Even a connect that succeeds at once is confirmed by a poll, so that
   * every outcome arrives the same way. */
  s->connecting = 1;
  if ((err = np__tcp_resolve(addr, 0, &s->addrs)) == 0) {
    s->next = s->addrs;
    err = connect_next(s);
  }
  if (err != 0) {
    stream_destroy(s);
    return err;
  }
  return stream_start(poll, s, token, interest, out);
}

int np__tcp_stream_accepted(np_poll *poll, SOCKET c, uint64_t token,
                            uint32_t interest, np_stream **out) {
  struct tcp_stream *s;
  u_long on = 1;

  /* An accepted socket inherits the listener's properties, but say the
   * ones that matter again rather than rely on it. */
  (void)SetHandleInformation((HANDLE)c, HANDLE_FLAG_INHERIT, 0);
  if (ioctlsocket(c, FIONBIO, &on) != 0) {
    int err = np__error_from_win32((DWORD)WSAGetLastError());

    closesocket(c);
    return err;
  }
  np__tcp_tune(c);
  if ((s = stream_alloc()) == NULL) {
    closesocket(c);
    return NP_ENOMEM;
  }
  s->sock = c;
  return stream_start(poll, s, token, interest, out);
}
