/*
 * The ready list: which sources may have an event to report, and the
 * level / edge / oneshot policy applied once for every backend.
 */
#include "config.h"

#include "internal.h"

void np__core_init(struct np__poll_core *core) {
  core->ready_head = core->ready_tail = NULL;
  core->ready_count = 0;
  core->all_head = NULL;
  core->live = 0;
  core->timers = NULL;
  np__lock_init(&core->lock);
  core->os_waiters = 0;
  core->nudged = 0;
  core->shared = 0;
}

static void ready_push_tail(struct np__poll_core *core,
                            struct np__source *src) {
  src->ready_next = NULL;
  src->ready_prev = core->ready_tail;
  if (core->ready_tail != NULL)
    core->ready_tail->ready_next = src;
  else
    core->ready_head = src;
  core->ready_tail = src;
  core->ready_count++;
  src->queued = 1;
}

static void ready_unlink(struct np__poll_core *core, struct np__source *src) {
  if (src->ready_prev != NULL)
    src->ready_prev->ready_next = src->ready_next;
  else
    core->ready_head = src->ready_next;
  if (src->ready_next != NULL)
    src->ready_next->ready_prev = src->ready_prev;
  else
    core->ready_tail = src->ready_prev;
  src->ready_next = src->ready_prev = NULL;
  core->ready_count--;
  src->queued = 0;
}

/* The bits a wait would report for src now, before any policy update. */
static uint32_t reportable(const struct np__source *src) {
  uint32_t want = src->interest & (NP_READABLE | NP_WRITABLE);
  uint32_t have = (src->interest & NP_EDGE) ? src->fresh : src->ready;

  /* Like mio and unlike epoll, a source with no interest is silent, even
   * for NP_HUP and NP_ERR: the user has paused it. */
  if (src->disarmed || want == 0)
    return 0;
  return have & (want | NP_HUP | NP_ERR);
}

static void maybe_queue(struct np__source *src) {
  if (!src->queued && reportable(src) != 0)
    ready_push_tail(src->core, src);
}

void np__source_register(struct np__poll_core *core, struct np__source *src,
                         const struct np__source_ops *ops, uint64_t token,
                         uint32_t interest) {
  src->core = core;
  src->ops = ops;
  src->token = token;
  src->interest = interest;
  src->ready = src->fresh = 0;
  src->disarmed = src->queued = 0;
  src->ready_next = src->ready_prev = NULL;
  src->all_prev = NULL;
  src->all_next = core->all_head;
  if (core->all_head != NULL)
    core->all_head->all_prev = src;
  core->all_head = src;
  core->live++;
}

void np__source_deregister(struct np__source *src) {
  struct np__poll_core *core = src->core;

  if (core == NULL)
    return;
  if (src->queued)
    ready_unlink(core, src);
  if (src->all_prev != NULL)
    src->all_prev->all_next = src->all_next;
  else
    core->all_head = src->all_next;
  if (src->all_next != NULL)
    src->all_next->all_prev = src->all_prev;
  src->all_next = src->all_prev = NULL;
  core->live--;
  src->core = NULL;
}

void np__source_signal(struct np__source *src, uint32_t bits) {
  bits &= NP__EVENT_BITS;
  src->ready |= bits;
  src->fresh |= bits;
  if (src->core != NULL)
    maybe_queue(src);
}

void np__source_clear(struct np__source *src, uint32_t bits) {
  src->ready &= ~bits;
  src->fresh &= ~bits;
  /* A queued source with nothing left to report leaves the list now (an
   * O(1) unlink): left there, it would make the next wait poll the OS
   * once without blocking before it blocks, one wasted system call (a
   * server round trip under Wine) per read that ends in NP_EAGAIN. */
  if (src->queued && src->core != NULL && reportable(src) == 0)
    ready_unlink(src->core, src);
}

int np__source_set_interest(struct np__source *src, uint64_t token,
                            uint32_t interest) {
  if ((interest & ~NP__INTEREST_BITS) != 0 ||
      ((interest & NP_EDGE) && (interest & NP_ONESHOT)))
    return NP_EINVAL;
  src->token = token;
  src->interest = interest;
  src->disarmed = 0;
  /* A new registration reports what holds now, in every mode. */
  src->fresh = src->ready;
  if (src->core != NULL)
    maybe_queue(src);
  if (src->ops != NULL && src->ops->interest_changed != NULL)
    src->ops->interest_changed(src);
  return 0;
}

int np__core_collect(struct np__poll_core *core, np_event *events, int max) {
  size_t visits = core->ready_count;
  int n = 0;

  /* Each source is visited at most once per call, so a level-triggered
   * source moved to the tail is not reported twice in one batch. */
  while (n < max && visits-- > 0) {
    struct np__source *src = core->ready_head;
    uint32_t bits = reportable(src);

    ready_unlink(core, src);
    if (bits == 0)
      continue;
    events[n].token = src->token;
    events[n].events = bits;
    n++;
    if (src->interest & NP_ONESHOT)
      src->disarmed = 1;
    else if (src->interest & NP_EDGE)
      src->fresh = 0;
    else
      ready_push_tail(core, src);
  }
  return n;
}

int np__core_has_queued(const struct np__poll_core *core) {
  return core->ready_head != NULL;
}

void np__core_close_all(struct np__poll_core *core) {
  while (core->all_head != NULL) {
    struct np__source *src = core->all_head;

    if (src->ops != NULL && src->ops->close_orphan != NULL)
      src->ops->close_orphan(src);
    /* The close op deregisters; make sure, so this loop always ends. */
    if (core->all_head == src)
      np__source_deregister(src);
  }
}
