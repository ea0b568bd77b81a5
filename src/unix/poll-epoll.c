/*
 * The POSIX poller: an epoll set, plus an eventfd for wake-ups from other
 * threads and for nudges between the threads that wait.
 *
 * Several threads may be in epoll_wait at once, without the poller's
 * lock, and one of them may take out an event for an fd that another
 * thread then closes and frees.  So epoll's data holds no pointer: it
 * names an entry of the poller's table of watches and that entry's
 * generation, which np__epoll_del changes; an event whose generation is
 * no longer its entry's is stale and dropped.  Entries are reused, so
 * the table is as large as the most fds ever registered at once.
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
#define WAKE_KEY UINT64_MAX /* the eventfd's data */
#define NO_SLOT UINT32_MAX

/* A watch in the epoll set, or a free entry (w NULL, next_free). */
struct slot {
  struct np__watch *w;
  uint32_t gen;
  uint32_t next_free;
};

struct np_poll {
  struct np__poll_core core;
  int epfd;
  int wakefd;
  int wake_pending; /* touched with __atomic builtins from any thread */
  unsigned flushing; /* closed streams still sending (np__epoll_flushing) */
  struct slot *slots;
  uint32_t nslots, free_slot;
};

int np__error_from_errno(void) { return np__error_from_os(errno); }

struct np__poll_core *np__poll_core(np_poll *poll) { return &poll->core; }

uint64_t np__now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int np__backend_poll_new(np_poll **out) {
  /* Edge-triggered: one write, one waiting thread woken, not all. */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = WAKE_KEY};
  np_poll *poll = calloc(1, sizeof(*poll));
  int err;

  if (poll == NULL)
    return NP_ENOMEM;
  np__core_init(&poll->core);
  poll->free_slot = NO_SLOT;
  poll->wakefd = -1;
  poll->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (poll->epfd < 0)
    goto fail;
  poll->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (poll->wakefd < 0)
    goto fail;
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
  np__core_fini(&poll->core);
  free(poll);
  return err;
}

void np__backend_poll_free(np_poll *poll) {
  close(poll->wakefd);
  close(poll->epfd);
  free(poll->slots);
  np__core_fini(&poll->core);
  free(poll);
}

/* Takes what the eventfd holds: wake-ups and nudges.  Returns 1 when an
 * np_poll_wake is among them. */
static int take_wakeups(np_poll *poll) {
  uint64_t count;

  /* Another thread may have emptied it already: then it took them. */
  if (read(poll->wakefd, &count, sizeof(count)) <= 0)
    return 0;
  np__core_nudge_taken(&poll->core);
  /* Cleared after the read: a wake that lands in between sees the flag
   * still set and writes nothing, and this wait, which returns anyway,
   * takes it.  Cleared before, such a wake's write would be read here
   * with its flag left set, and every later wake skipped for good. */
  return __atomic_exchange_n(&poll->wake_pending, 0, __ATOMIC_SEQ_CST) != 0;
}

static void dispatch(np_poll *poll, uint64_t key, uint32_t events) {
  uint32_t i = (uint32_t)key;
  const struct slot *e;

  if (i >= poll->nslots)
    return;
  e = &poll->slots[i];
  if (e->w != NULL && e->gen == (uint32_t)(key >> 32))
    e->w->on_event(e->w, events);
}

int np__backend_poll_os(np_poll *poll, int timeout_ms, int batch) {
  struct epoll_event evs[EVENT_BATCH];
  int woken = 0;
  int i, n;

  if (batch <= 0 || batch > EVENT_BATCH)
    batch = EVENT_BATCH;
  np__core_os_wait_begin(&poll->core);
  n = epoll_wait(poll->epfd, evs, batch, timeout_ms < 0 ? -1 : timeout_ms);
  np__core_os_wait_end(&poll->core);
  if (n < 0)
    return errno == EINTR ? 0 : np__error_from_errno();
  for (i = 0; i < n; i++) {
    if (evs[i].data.u64 == WAKE_KEY)
      woken |= take_wakeups(poll);
    else
      dispatch(poll, evs[i].data.u64, evs[i].events);
  }
  return woken;
}

void np__backend_nudge(struct np__poll_core *core) {
  np_poll *poll = NP__CONTAINER_OF(core, np_poll, core);
  uint64_t one = 1;

  /* A failure (a saturated counter) leaves the eventfd readable anyway. */
  (void)!write(poll->wakefd, &one, sizeof(one));
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

/* Gives w an entry of the table.  Returns 0 or NP_ENOMEM. */
static int slot_take(np_poll *poll, struct np__watch *w) {
  uint32_t i = poll->free_slot;

  if (i == NO_SLOT) {
    uint32_t n = poll->nslots ? poll->nslots * 2 : 64;
    struct slot *grown;
    uint32_t j;

    if (n >= NO_SLOT || (grown = realloc(poll->slots, n * sizeof(*grown))) ==
                            NULL)
      return NP_ENOMEM;
    for (j = poll->nslots; j < n; j++) {
      grown[j].w = NULL;
      grown[j].gen = 0;
      grown[j].next_free = j + 1 < n ? j + 1 : NO_SLOT;
    }
    poll->slots = grown;
    i = poll->nslots;
    poll->nslots = n;
  }
  poll->free_slot = poll->slots[i].next_free;
  poll->slots[i].w = w;
  w->slot = i;
  return 0;
}

static void slot_give_back(np_poll *poll, struct np__watch *w) {
  struct slot *e = &poll->slots[w->slot];

  e->w = NULL;
  e->gen++; /* events still on their way for w are stale now */
  e->next_free = poll->free_slot;
  poll->free_slot = w->slot;
  w->slot = NO_SLOT;
}

static int epoll_change(np_poll *poll, int op, struct np__watch *w,
                        uint32_t events) {
  struct epoll_event ev = {.events = events};

  ev.data.u64 = (uint64_t)poll->slots[w->slot].gen << 32 | w->slot;
  if (epoll_ctl(poll->epfd, op, w->fd, &ev) < 0)
    return np__error_from_errno();
  return 0;
}

int np__epoll_add(np_poll *poll, struct np__watch *w, uint32_t events) {
  int err = slot_take(poll, w);

  if (err == 0 && (err = epoll_change(poll, EPOLL_CTL_ADD, w, events)) != 0)
    slot_give_back(poll, w);
  return err;
}

int np__epoll_mod(np_poll *poll, struct np__watch *w, uint32_t events) {
  return epoll_change(poll, EPOLL_CTL_MOD, w, events);
}

void np__epoll_del(np_poll *poll, struct np__watch *w) {
  /* Removal only fails for an fd that is not in the set; nothing to do. */
  (void)epoll_change(poll, EPOLL_CTL_DEL, w, 0);
  slot_give_back(poll, w);
}
