/*
 * The public poller calls: argument checks, the wait loop and its clock,
 * on top of the backend's OS wait.  Each runs with the poller's lock,
 * which the backend drops across the OS wait itself, so that any number
 * of threads can wait at once.
 */
#include "config.h"

#include "internal.h"

int np_poll_new(np_poll **out) {
  if (out == NULL)
    return NP_EINVAL;
  *out = NULL;
  return np__backend_poll_new(out);
}

void np_poll_free(np_poll *poll) {
  if (poll == NULL)
    return;
  /* No other thread may use the poller now (np_poll_free(3)); the lock
   * only keeps the backend's own rule that it runs with it. */
  np__core_lock(np__poll_core(poll));
  np__core_close_all(np__poll_core(poll));
  np__core_unlock(np__poll_core(poll));
  np__backend_poll_free(poll);
}

/* Milliseconds left before deadline, never negative. */
static int remaining_ms(uint64_t deadline) {
  uint64_t now = np__now_ms();

  return now >= deadline ? 0 : (int)(deadline - now);
}

int np_poll_wait(np_poll *poll, np_event *events, int max_events,
                 int timeout_ms) {
  struct np__poll_core *core;
  uint64_t deadline = 0;
  int wait_ms = timeout_ms;
  int n;

  if (poll == NULL || events == NULL || max_events <= 0)
    return NP_EINVAL;
  core = np__poll_core(poll);
  if (timeout_ms > 0)
    deadline = np__now_ms() + (uint64_t)timeout_ms;
  np__core_lock(core);
  for (;;) {
    /* OS notifications are taken even when sources are already queued, so
     * that an always-ready source cannot starve the others.  The OS wait
     * ends in time for the earliest timer. */
    int woken = np__backend_poll_os(
        poll, np__core_has_queued(core) ? 0 : np__timer_wait_ms(core, wait_ms),
        core->shared ? max_events : 0);

    if (woken < 0) {
      n = woken;
      break;
    }
    np__timer_run(core);
    n = np__core_collect(core, events, max_events);
    if (n > 0 || woken || timeout_ms == 0)
      break;
    /* Completions that changed no reported state (a write finishing, a
     * cancelled read, or a source another thread took first) end an OS
     * wait early: wait again for the rest. */
    if (timeout_ms > 0) {
      wait_ms = remaining_ms(deadline);
      if (wait_ms == 0)
        break;
    }
  }
  /* What this wait leaves queued goes to a thread in the OS wait. */
  np__core_unlock(core);
  return n;
}

int np_poll_flush(np_poll *poll, int timeout_ms) {
  uint64_t deadline = 0;
  int woken = 0, expired = 0, err = 0;

  if (poll == NULL)
    return NP_EINVAL;
  if (timeout_ms > 0)
    deadline = np__now_ms() + (uint64_t)timeout_ms;
  np__core_lock(np__poll_core(poll));
  while (np__backend_flushing(poll)) {
    int wait_ms = timeout_ms <= 0 ? timeout_ms : remaining_ms(deadline);
    int r;

    if (expired) {
      err = NP_ETIMEDOUT;
      break;
    }
    /* Notifications go to their sources as in a wait, so the ready list
     * keeps what live objects report for the next np_poll_wait; timers
     * run too (a lingering close ends on one). */
    r = np__backend_poll_os(
        poll, np__timer_wait_ms(np__poll_core(poll), wait_ms), 0);
    if (r < 0) {
      err = r;
      break;
    }
    np__timer_run(np__poll_core(poll));
    woken |= r;
    expired =
        timeout_ms == 0 || (timeout_ms > 0 && remaining_ms(deadline) == 0);
  }
  np__core_unlock(np__poll_core(poll));
  /* A wake-up taken here is still owed to the next wait. */
  if (woken)
    (void)np__backend_wake(poll);
  return err;
}

int np_poll_wake(np_poll *poll) {
  if (poll == NULL)
    return NP_EINVAL;
  return np__backend_wake(poll);
}
