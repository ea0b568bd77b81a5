/*
 * TCP listeners for the Windows backend: a non-blocking listening socket
 * whose AFD poll waits for AFD_POLL_ACCEPT while nobody knows of a
 * waiting connection.
 */
#include "config.h"

#include <stdlib.h>

#include "afd.h"
#include "tcp.h"

struct tcp_listener {
  np_listener pub;
  struct np__afd_sock afd;
  SOCKET sock;
  unsigned char readable; /* accept may succeed; cleared on EWOULDBLOCK */
};

static struct tcp_listener *listener_of(np_listener *l) {
  return NP__CONTAINER_OF(l, struct tcp_listener, pub);
}

static void listener_rearm(struct tcp_listener *l) {
  int want = (l->pub.src.interest & NP_READABLE) && !l->readable;

  /* Without a poll the listener would go silent: np_accept will meet the
   * trouble and report it. */
  if (np__afd_sock_want(&l->afd, want ? NP__AFD_ACCEPT : 0) != 0) {
    l->readable = 1;
    np__source_signal(&l->pub.src, NP_READABLE);
  }
}

static void listener_on_events(struct np__afd_sock *as, ULONG ev, DWORD err) {
  struct tcp_listener *l = NP__CONTAINER_OF(as, struct tcp_listener, afd);

  /* A failed poll, too, is for np_accept to report. */
  if ((ev & NP__AFD_ACCEPT) || (ev == 0 && err != 0)) {
    l->readable = 1;
    np__source_signal(&l->pub.src, NP_READABLE);
  }
  listener_rearm(l);
}

static int listener_accept(np_listener *pl, np_poll *poll, uint64_t token,
                           uint32_t interest, np_stream **out) {
  struct tcp_listener *l = listener_of(pl);
  SOCKET c;
  int err;

  /* A connection reset before it was accepted is skipped. */
  do {
    c = accept(l->sock, NULL, NULL);
    err = c == INVALID_SOCKET ? WSAGetLastError() : 0;
  } while (err == WSAECONNRESET);
  if (err == WSAEWOULDBLOCK) {
    l->readable = 0;
    np__source_clear(&l->pub.src, NP_READABLE);
    listener_rearm(l);
    return NP_EAGAIN;
  }
  if (err != 0)
    return np__error_from_win32((DWORD)err);
  return np__tcp_stream_accepted(poll, c, token, interest, out);
}

static int listener_address(np_listener *pl, char *buf, size_t len) {
  return np__tcp_local_address(listener_of(pl)->sock, buf, len);
}

static void listener_free(struct np__afd_sock *as) {
  free(NP__CONTAINER_OF(as, struct tcp_listener, afd));
}

static void listener_close(np_listener *pl) {
  struct tcp_listener *l = listener_of(pl);

  np__source_deregister(&l->pub.src);
  /* Connections not yet accepted are reset with the socket. */
  closesocket(l->sock);
  np__afd_sock_close(&l->afd);
}

static void listener_interest_changed(struct np__source *src) {
  listener_rearm(NP__CONTAINER_OF(src, struct tcp_listener, pub.src));
}

static void listener_close_orphan(struct np__source *src) {
  listener_close(&NP__CONTAINER_OF(src, struct tcp_listener, pub.src)->pub);
}

static const struct np__listener_ops listener_ops = {
    listener_accept, listener_address, listener_close};
static const struct np__source_ops listener_source_ops = {
    listener_interest_changed, listener_close_orphan};

/* A listening socket on the first address that binds.  Another process
 * cannot bind the same port while it lives (SO_EXCLUSIVEADDRUSE). */
static int listen_socket(const struct addrinfo *ai, int backlog, SOCKET *out) {
  int err = NP_EADDRNOTAVAIL;

  for (; ai != NULL; ai = ai->ai_next) {
    BOOL on = TRUE;
    SOCKET s;

    if ((err = np__tcp_socket(ai->ai_family, &s)) != 0)
      continue;
    if (setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&on,
                   sizeof(on)) == 0 &&
        bind(s, ai->ai_addr, (int)ai->ai_addrlen) == 0 &&
        listen(s, backlog) == 0) {
      *out = s;
      return 0;
    }
    err = np__error_from_win32((DWORD)WSAGetLastError());
    closesocket(s);
  }
  return err;
}

int np__tcp_listen(np_poll *poll, const struct np__address *addr,
                   const struct np__opts *opts, uint64_t token,
                   np_listener **out) {
  struct tcp_listener *l;
  struct addrinfo *ai;
  int err;

  if ((err = np__wsa_init()) != 0 ||
      (err = np__tcp_resolve(addr, 1, &ai)) != 0)
    return err;
  if ((l = calloc(1, sizeof(*l))) == NULL) {
    freeaddrinfo(ai);
    return NP_ENOMEM;
  }
  err = listen_socket(ai, opts->backlog, &l->sock);
  freeaddrinfo(ai);
  if (err == 0 &&
      (err = np__afd_sock_open(poll, &l->afd, l->sock, listener_on_events,
                               listener_free)) != 0)
    closesocket(l->sock);
  if (err != 0) {
    free(l);
    return err;
  }
  l->pub.ops = &listener_ops;
  np__source_register(np__poll_core(poll), &l->pub.src, &listener_source_ops,
                      token, NP_READABLE);
  listener_rearm(l);
  *out = &l->pub;
  return 0;
}
