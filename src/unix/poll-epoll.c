/*
 * The POSIX poller: an epoll set, plus an eventfd for wake-ups from other
 * threads.  Events are dispatched to the watch stored in epoll's data.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "unix.h"

#define EVENT_BATCH 64

struct np_poll {
  struct np__poll_core core;
  int epfd;
  int wakefd;
  int wake_pending; /* touched with __atomic builtins from any thread */
  unsigned flushing; /* closed streams still sending (np__epoll_flushing) */
};

int np__error_from_errno(void) { return np__error_from_os(errno); }

struct np__poll_core *np__poll_core(np_poll *poll) { return &poll->core; }

uint64_t np__now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int np__backend_poll_new(np_poll **out) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  np_poll *poll = calloc(1, sizeof(*poll));
  int err;

  if (poll == NULL)
    return NP_ENOMEM;
  np__core_init(&poll->core);
  poll->wakefd = -1;
  poll->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (poll->epfd < 0)
    goto fail;
  poll->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (poll->wakefd < 0)
    goto fail;
  /* The wake-up eventfd is the one entry whose data pointer is NULL. */
  if (epoll_ctl(poll->epfd, EPOLL_CTL_ADD, poll->wakefd, &ev) < 0)
    goto fail;
  *out = poll;
  return 0;
fail:
  err = np__error_from_errno();
  if (poll->wakefd >= 0)
    close(poll->wakefd);
  if (poll->epfd >= 0)
    close(poll->epfd);
  free(poll);
  return err;
}

void np__backend_poll_free(np_poll *poll) {
  close(poll->wakefd);
  close(poll->epfd);
  free(poll);
}

static void drain_wakeups(np_poll *poll) {
  uint64_t count;

  /* Drain before clearing the flag.  A wake that lands in between sees
   * the flag still set and writes nothing, which is fine: this wait
   * returns anyway.  Clearing first would let such a wake's write be
   * drained here while its flag stays set, and then every later wake
   * would be skipped for good. */
  while (read(poll->wakefd, &count, sizeof(count)) > 0)
    ;
  __atomic_store_n(&poll->wake_pending, 0, __ATOMIC_SEQ_CST);
}

int np__backend_poll_os(np_poll *poll, int timeout_ms) {
  struct epoll_event evs[EVENT_BATCH];
  int woken = 0;
  int i, n;

  n = epoll_wait(poll->epfd, evs, EVENT_BATCH, timeout_ms < 0 ? -1
                                                              : timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : np__error_from_errno();
  for (i = 0; i < n; i++) {
    struct np__watch *w = evs[i].data.ptr;

    if (w == NULL) {
      drain_wakeups(poll);
      woken = 1;
    } else {
      w->on_event(w, evs[i].events);
    }
  }
  return woken;
}

void np__epoll_flushing(np_poll *poll, int delta) {
  poll->flushing += (unsigned)delta;
}

int np__backend_flushing(np_poll *poll) { return poll->flushing != 0; }

int np__backend_wake(np_poll *poll) {
  uint64_t one = 1;

  if (__atomic_exchange_n(&poll->wake_pending, 1, __ATOMIC_SEQ_CST))
    return 0;
  /* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
  if (write(poll->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
    return np__error_from_errno();
  return 0;
}

static int epoll_change(np_poll *poll, int op, struct np__watch *w,
                        uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = w};

  if (epoll_ctl(poll->epfd, op, w->fd, &ev) < 0)
    return np__error_from_errno();
  return 0;
}

int np__epoll_add(np_poll *poll, struct np__watch *w, uint32_t events) {
  return epoll_change(poll, EPOLL_CTL_ADD, w, events);
}

int np__epoll_mod(np_poll *poll, struct np__watch *w, uint32_t events) {
  return epoll_change(poll, EPOLL_CTL_MOD, w, events);
}

void np__epoll_del(np_poll *poll, struct np__watch *w) {
  /* Removal only fails for an fd that is not in the set; nothing to do. */
  (void)epoll_change(poll, EPOLL_CTL_DEL, w, 0);
}
