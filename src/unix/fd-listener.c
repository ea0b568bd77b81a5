/*
 * A listening socket as an np_listener.  The owner (AF_UNIX pipes, TCP)
 * embeds struct np__fd_listener and supplies a class: a vet hook that
 * sees each connection before any byte is read, the address, and the
 * release of whatever else it holds.
 */
#define _GNU_SOURCE /* accept4 */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unix.h"

static struct np__fd_listener *from_pub(np_listener *p) {
  return NP__CONTAINER_OF(p, struct np__fd_listener, pub);
}

/* Pauses after an accept failed for lack of descriptors or memory. */
#define PAUSE_FIRST_MS 50u
#define PAUSE_MAX_MS 1000u

static void on_event(struct np__watch *w, uint32_t ev) {
  struct np__fd_listener *l =
      NP__CONTAINER_OF(w, struct np__fd_listener, watch);

  NP__UNUSED(ev);
  /* Edge-triggered: one event per arriving connection (or error, which
   * np_accept then reports).  A paused listener waits for its timer. */
  if (!l->pause.armed)
    np__source_signal(&l->pub.src, NP_READABLE);
}

static void pause_over(struct np__timer *t) {
  struct np__fd_listener *l =
      NP__CONTAINER_OF(t, struct np__fd_listener, pause);

  np__source_signal(&l->pub.src, NP_READABLE);
}

/* accept(2) failed for want of a resource (EMFILE, ENFILE, ENOMEM,
 * ENOBUFS) while connections wait: reporting the listener again at once
 * would only fail again, and a level-triggered caller would spin.  The
 * listener goes quiet and is reported again after a pause that doubles,
 * up to PAUSE_MAX_MS, while the shortage lasts. */
static void pause_accepting(struct np__fd_listener *l) {
  np__source_clear(&l->pub.src, NP_READABLE);
  l->pause_ms = l->pause_ms == 0 ? PAUSE_FIRST_MS
                : l->pause_ms * 2 < PAUSE_MAX_MS ? l->pause_ms * 2
                                                 : PAUSE_MAX_MS;
  np__timer_start(np__poll_core(l->poll), &l->pause, l->pause_ms);
}

/* Takes the next connection off the queue.  Returns the fd, or NP_EAGAIN
 * (and clears READABLE) when none waits, or another NP_E* (pausing the
 * listener when descriptors or memory ran out). */
static int next_fd(struct np__fd_listener *l) {
  for (;;) {
    int fd = accept4(l->watch.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int e;

    if (fd >= 0) {
      l->pause_ms = 0;
      return fd;
    }
    e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      np__source_clear(&l->pub.src, NP_READABLE);
      return NP_EAGAIN;
    }
    if (e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS)
      pause_accepting(l);
    /* A client that gave up while queued is not the listener's error. */
    if (e != EINTR && e != ECONNABORTED && e != EPROTO)
      return np__error_from_os(e);
  }
}

/* The next vetted connection: the one a failed np_accept kept, or a new
 * one.  Returns its fd or NP_E*. */
static int next_vetted(struct np__fd_listener *l) {
  int fd = l->held_fd, err;

  if (fd >= 0) {
    l->held_fd = -1;
    return fd;
  }
  for (;;) {
    if ((fd = next_fd(l)) < 0)
      return fd;
    err = l->cls->vet != NULL ? l->cls->vet(l, fd) : 0;
    if (err == 0)
      return fd;
    close(fd);
    if (err != NP__FD_REFUSE)
      return err;
  }
}

static int listener_accept(np_listener *p, np_poll *poll, uint64_t token,
                           uint32_t interest, np_stream **out) {
  struct np__fd_listener *l = from_pub(p);
  int fd = next_vetted(l), err;

  if (fd < 0)
    return fd;
  err = np__fd_stream_new(poll, fd, l->stream_flags, l->write_limit,
                          token, interest, out);
  if (err == NP_ENOMEM) {
    /* The connection stays waiting, as np_accept(3) promises: the next
     * call hands it out, and the listener stays readable meanwhile. */
    l->held_fd = fd;
    np__source_signal(&l->pub.src, NP_READABLE);
  } else if (err != 0) {
    close(fd);
  }
  return err;
}

static int listener_address(np_listener *p, char *buf, size_t len) {
  struct np__fd_listener *l = from_pub(p);

  return l->cls->address(l, buf, len);
}

static void listener_close(np_listener *p) {
  struct np__fd_listener *l = from_pub(p);

  np__timer_stop(np__poll_core(l->poll), &l->pause);
  if (l->held_fd >= 0)
    close(l->held_fd);
  np__source_deregister(&l->pub.src);
  np__epoll_del(l->poll, &l->watch);
  /* Connections still queued are dropped with the socket. */
  close(l->watch.fd);
  l->cls->release(l);
}

static void orphan_close(struct np__source *src) {
  listener_close(&NP__CONTAINER_OF(src, struct np__fd_listener, pub.src)->pub);
}

static const struct np__listener_ops listener_ops = {
    listener_accept, listener_address, listener_close};

static const struct np__source_ops source_ops = {NULL, orphan_close};

int np__fd_listener_start(struct np__fd_listener *l, np_poll *poll, int fd,
                          const struct np__fd_listener_class *cls,
                          unsigned stream_flags, size_t write_limit,
                          uint64_t token) {
  int err;

  if (write_limit == 0)
    return NP_EINVAL;
  l->pub.ops = &listener_ops;
  l->watch.fd = fd;
  l->watch.on_event = on_event;
  l->poll = poll;
  l->cls = cls;
  l->stream_flags = stream_flags;
  l->write_limit = write_limit;
  l->pause_ms = 0;
  l->held_fd = -1;
  np__timer_init(&l->pause, pause_over);
  err = np__epoll_add(poll, &l->watch, EPOLLIN | EPOLLET);
  if (err != 0)
    return err;
  /* Connections queued before this call show up as epoll's first edge. */
  np__source_register(np__poll_core(poll), &l->pub.src, &source_ops, token,
                      NP_READABLE);
  return 0;
}
