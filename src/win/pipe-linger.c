/*
 * The end of a closed pipe: its delivery is bounded, and np_abort.
 *
 * np_close keeps the handle open while writes are in flight, so that
 * what np_write accepted reaches a peer that reads.  A peer that never
 * reads would keep the handle (and the name, and the buffers) for good,
 * so the delivery lasts at most the stream's linger_ms: then the stream
 * is aborted.  While it lingers the stream reads and drops what the
 * peer sends (pipe-read.c, discard_more); a peer that has sent
 * NP__LINGER_DISCARD_MAX bytes that way is writing, not reading, and the
 * stream is aborted at once rather than at the limit.
 *
 * Aborting cancels everything in flight and closes the handle now: the
 * peer sees the end of the stream at once, and the bytes that were
 * queued and not taken by the pipe are lost.  The memory, with the
 * OVERLAPPEDs in it, still goes with the last completion.
 */
#include "config.h"

#include "win/pipe.h"

static void linger_expired(struct np__timer *t) {
  np__pipe_abort_now(NP__CONTAINER_OF(t, struct np__pipe, lingering));
}

void np__pipe_linger_start(struct np__pipe *p) {
  if (p->stream.linger_ms < 0)
    return;
  np__timer_init(&p->lingering, linger_expired);
  np__timer_start(np__poll_core(p->poll), &p->lingering,
                  (uint64_t)p->stream.linger_ms);
}

int np__pipe_linger_discarded(struct np__pipe *p, size_t bytes) {
  p->discarded += bytes;
  if (p->discarded <= NP__LINGER_DISCARD_MAX)
    return 0;
  np__pipe_abort_now(p);
  return 1;
}

void np__pipe_timers_stop(struct np__pipe *p) {
  np__timer_stop(np__poll_core(p->poll), &p->lingering);
  (void)np__pipe_retry_stop(p, &p->rretry);
  /* A write waiting for its retry holds the slot: free it. */
  if (np__pipe_retry_stop(p, &p->wretry))
    p->wbusy = p->wwaiting = 0;
}

void np__pipe_abort_now(struct np__pipe *p) {
  /* The timers' references may be the last but the caller's. */
  p->refs++;
  /* Nothing starts from now on, and np_poll_flush stops waiting. */
  p->cancelled = 1;
  if (p->werr == 0)
    p->werr = NP_ECANCELED;
  np__pipe_timers_stop(p);
  np__pipe_write_drop(p);
  if (p->handle != INVALID_HANDLE_VALUE) {
    /* Closing the handle cancels what is in flight as well; asking
     * first makes the cancellation explicit where a driver holds on to
     * its requests past the close. */
    CancelIoEx(p->handle, NULL);
    np__pipe_close_handle(p);
  }
  np__pipe_unref(p);
}

void np__pipe_abort(np_stream *s) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);

  np__source_deregister(&s->src);
  p->closed = 1;
  p->cancelled = 1; /* so that the read in flight is cancelled, not kept */
  np__pipe_read_stop(p);
  np__pipe_abort_now(p);
  np__pipe_unref(p);
}
