/*
 * The poller's timers: a pairing heap of intrusive nodes, so that arming
 * and cancelling never allocate (a retry scheduled from a completion can
 * not fail for lack of memory), inserting is O(1) and removing the
 * earliest or any other timer is O(log n) amortised.  Nothing is scanned
 * per wait: the wait only looks at the root.
 */
#include "config.h"

#include "internal.h"

void np__timer_init(struct np__timer *t, void (*fire)(struct np__timer *t)) {
  t->due = 0;
  t->child = t->next = t->prev = NULL;
  t->fire = fire;
  t->armed = 0;
}

/* Joins two heap roots (next and prev clear) into one; returns it. */
static struct np__timer *meld(struct np__timer *a, struct np__timer *b) {
  struct np__timer *t;

  if (b == NULL)
    return a;
  if (a == NULL)
    return b;
  if (b->due < a->due) {
    t = a;
    a = b;
    b = t;
  }
  /* b becomes a's first child; prev of a first child is its parent. */
  b->next = a->child;
  if (a->child != NULL)
    a->child->prev = b;
  b->prev = a;
  a->child = b;
  return a;
}

/* The standard two passes over a list of siblings: meld them in pairs
 * from the left, then meld the pairs from the right.  Returns the root. */
static struct np__timer *merge_pairs(struct np__timer *list) {
  struct np__timer *pairs = NULL, *a, *b, *root = NULL;

  while (list != NULL) {
    a = list;
    b = a->next;
    list = b != NULL ? b->next : NULL;
    a->next = a->prev = NULL;
    if (b != NULL) {
      b->next = b->prev = NULL;
      a = meld(a, b);
    }
    a->next = pairs; /* a stack: the last pair comes first below */
    pairs = a;
  }
  while (pairs != NULL) {
    a = pairs;
    pairs = a->next;
    a->next = NULL;
    root = meld(root, a);
  }
  return root;
}

/* Cuts t (not the root) out of its parent's list of children. */
static void detach(struct np__timer *t) {
  if (t->prev->child == t)
    t->prev->child = t->next;
  else
    t->prev->next = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  t->next = t->prev = NULL;
}

void np__timer_stop(struct np__poll_core *core, struct np__timer *t) {
  struct np__timer *kids;

  if (!t->armed)
    return;
  t->armed = 0;
  kids = t->child;
  t->child = NULL;
  if (core->timers == t) {
    core->timers = merge_pairs(kids);
    return;
  }
  detach(t);
  core->timers = meld(core->timers, merge_pairs(kids));
}

void np__timer_start(struct np__poll_core *core, struct np__timer *t,
                     uint64_t ms) {
  np__timer_stop(core, t);
  t->due = np__now_ms() + ms;
  t->armed = 1;
  core->timers = meld(core->timers, t);
  /* Threads in the OS wait computed their timeouts without this timer. */
  if (core->timers == t && core->os_waiters > 0)
    np__core_nudge(core);
}

int np__timer_wait_ms(const struct np__poll_core *core, int wait_ms) {
  uint64_t now, left;

  if (core->timers == NULL)
    return wait_ms;
  now = np__now_ms();
  left = core->timers->due > now ? core->timers->due - now : 0;
  if (wait_ms >= 0 && (uint64_t)wait_ms <= left)
    return wait_ms;
  return left > (uint64_t)INT32_MAX ? INT32_MAX : (int)left;
}

int np__timer_run(struct np__poll_core *core) {
  uint64_t now = np__now_ms();
  int fired = 0;

  /* One reading of the clock: a callback that re-arms for a later time
   * waits for the next call, and the count bounds one that re-arms for
   * 0 ms, so the wait is never held here. */
  while (core->timers != NULL && core->timers->due <= now && fired < 1024) {
    struct np__timer *t = core->timers;

    np__timer_stop(core, t);
    t->fire(t);
    fired++;
  }
  return fired;
}
