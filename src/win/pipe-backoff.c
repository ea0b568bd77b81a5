/*
 * Retries of a pipe's reads and writes when the system runs short.
 *
 * ReadFile and WriteFile fail with ERROR_NOT_ENOUGH_QUOTA,
 * ERROR_NO_SYSTEM_RESOURCES and the like when non-paged pool or the
 * process's quota is exhausted, often for a moment only (too many
 * operations in flight across the machine, a burst of large writes).
 * Ending the stream on the first such failure would turn a hiccup into
 * a lost connection, so the slot tries again on the poller's timer,
 * backing off from 1 ms to BACKOFF_MAX_MS, and only an error that
 * persists for NP__PIPE_RETRY_FOR_MS reaches the user (as NP_ENOBUFS or
 * NP_ENOMEM).  Nothing sleeps: the poller goes on serving the others.
 */
#include "config.h"

#include "win/pipe.h"

#define BACKOFF_MAX_MS 100

int np__pipe_transient(DWORD err) {
  switch (err) {
  case ERROR_NOT_ENOUGH_QUOTA:
  case ERROR_NO_SYSTEM_RESOURCES:
  case ERROR_NONPAGED_SYSTEM_RESOURCES:
  case ERROR_PAGED_SYSTEM_RESOURCES:
  case ERROR_WORKING_SET_QUOTA:
  case ERROR_PAGEFILE_QUOTA:
  case ERROR_COMMITMENT_LIMIT:
  /* WriteFile's documentation: too many asynchronous requests in flight
   * can make it fail with these two. */
  case ERROR_INVALID_USER_BUFFER:
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
    return 1;
  default:
    return 0;
  }
}

int np__pipe_retry_later(struct np__pipe *p, struct np__pipe_retry *r,
                         DWORD err, void (*fire)(struct np__timer *t)) {
  uint64_t now = np__now_ms();

  /* A pipe being torn down starts nothing new. */
  if (!np__pipe_transient(err) || p->cancelled || r->timer.armed)
    return 0;
  if (r->give_up == 0) {
    r->give_up = now + NP__PIPE_RETRY_FOR_MS;
    r->delay_ms = 1;
  } else if (now >= r->give_up) {
    np__pipe_retry_reset(r);
    return 0;
  }
  np__timer_init(&r->timer, fire);
  np__timer_start(np__poll_core(p->poll), &r->timer, r->delay_ms);
  r->delay_ms =
      r->delay_ms * 2 < BACKOFF_MAX_MS ? r->delay_ms * 2 : BACKOFF_MAX_MS;
  p->refs++;
  return 1;
}

void np__pipe_retry_reset(struct np__pipe_retry *r) {
  r->give_up = 0;
  r->delay_ms = 0;
}

int np__pipe_retry_stop(struct np__pipe *p, struct np__pipe_retry *r) {
  if (!r->timer.armed)
    return 0;
  np__timer_stop(np__poll_core(p->poll), &r->timer);
  np__pipe_unref(p);
  return 1;
}

void np__pipe_retries_stop(struct np__pipe *p) {
  (void)np__pipe_retry_stop(p, &p->rretry);
  if (np__pipe_retry_stop(p, &p->wretry))
    p->wbusy = p->wwaiting = 0;
}
