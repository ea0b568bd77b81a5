/*
 * The byte pump between two ends (npipe streams or channels), in one or
 * two directions.  Streams are registered edge-triggered for reading and
 * writing, so their interest never changes: every pump moves bytes in
 * each direction until a read or a write returns NP_EAGAIN, and an event
 * on either end, or a channel's wake-up, pumps again.
 *
 * The end of a direction's input is passed on as a shutdown of its
 * output when the direction says so; an output whose peer is gone ends
 * the direction at once, so a vanished peer never leaves a relay
 * waiting for input that nobody will read.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tools.h"

#define RELAY_BUF (64 * 1024)
/* Message mode grows the buffer to fit a message, up to this size. */
#define RELAY_MAX_MESSAGE (64 * 1024 * 1024)
/* tl_relay_linger: how long to wait for a peer to go, after a shutdown
 * and without one. */
#define LINGER_SHUT_MS 5000
#define LINGER_OPEN_MS 250

uint64_t tl_end_token(struct tl_end *e) { return (uint64_t)(uintptr_t)e; }

struct tl_end *tl_token_end(uint64_t token) {
  return (struct tl_end *)(uintptr_t)token;
}

void tl_relay_init(struct tl_relay *r) {
  memset(r, 0, sizeof(*r));
  r->ends[0].relay = r;
  r->ends[1].relay = r;
}

int tl_relay_start(struct tl_relay *r) {
  int i;

  for (i = 0; i < r->ndirs; i++) {
    r->dirs[i].buf = malloc(RELAY_BUF);
    if (r->dirs[i].buf == NULL)
      return NP_ENOMEM;
    r->dirs[i].cap = RELAY_BUF;
    r->dirs[i].state = TL_DIR_RUN;
  }
  r->started_ms = tl_sys_now_ms();
  r->dirty = 1;
  return 0;
}

/* Keeps the first error, with the name of the end it concerns. */
static void fail(struct tl_relay *r, const char *name, int err) {
  if (r->error == 0) {
    r->error = err;
    r->error_name = name;
  }
}

void tl_relay_event(struct tl_end *e, uint32_t events) {
  e->relay->dirty = 1;
  if (events & NP_HUP)
    e->gone = 1;
  if ((events & NP_ERR) && e->stream != NULL) {
    int err = np_stream_error(e->stream);

    /* A TCP connection that could not be made, or a reset: the stream
     * is of no further use in either direction. */
    if (err != 0) {
      e->gone = e->failed = 1;
      fail(e->relay, e->in_name, err);
    }
  }
}

static ptrdiff_t end_read(struct tl_end *e, void *buf, size_t len) {
  if (e->stream != NULL)
    return np_read(e->stream, buf, len);
  return tl_chan_read(e->chan, buf, len);
}

static ptrdiff_t end_write(struct tl_end *e, const void *buf, size_t len) {
  ptrdiff_t n;

  if (e->chan != NULL)
    return tl_chan_write(e->chan, buf, len);
  n = np_write(e->stream, buf, len);
  if (n > 0)
    e->wrote = 1;
  return n;
}

static int end_shutdown(struct tl_end *e) {
  int err;

  if (e->shut)
    return 0;
  err = e->stream != NULL ? np_shutdown(e->stream) : tl_chan_shutdown(e->chan);
  if (err == 0)
    e->shut = 1;
  return err;
}

static int end_gone(struct tl_end *e) {
  return e->gone || (e->chan != NULL && tl_chan_gone(e->chan));
}

/* Message mode: a message larger than the buffer stays readable, so a
 * larger buffer gets it whole. */
static int grow(struct tl_dir *d) {
  unsigned char *bigger;

  if (d->cap >= RELAY_MAX_MESSAGE)
    return NP_EMSGSIZE;
  bigger = realloc(d->buf, d->cap * 2);
  if (bigger == NULL)
    return NP_ENOMEM;
  d->buf = bigger;
  d->cap *= 2;
  return 0;
}

/* The input ended and everything read went out: pass the end on. */
static void finish(struct tl_relay *r, struct tl_dir *d) {
  int err;

  if (d->propagate) {
    err = end_shutdown(d->to);
    if (err == NP_EAGAIN)
      return; /* a channel still writes; it wakes us when done */
    /* A peer that left first needs no shutdown. */
    if (err != 0 && err != NP_EPIPE && err != NP_ESHUTDOWN)
      fail(r, d->to->out_name, err);
  }
  d->state = TL_DIR_DONE;
}

/* Standard output (or a file) failed: nobody will read what the other
 * direction brings either, so the whole relay ends now, and with an
 * error.  A command's input that closes is not that: the command may
 * still be writing its output. */
static int local_output_failed(struct tl_end *e) {
  return e->chan != NULL && tl_chan_output_error(e->chan) != 0;
}

static void stop_on_write_error(struct tl_relay *r, struct tl_dir *d,
                                ptrdiff_t err) {
  d->to->gone = 1;
  fail(r, d->to->out_name, (int)err);
  if (local_output_failed(d->to))
    r->broken = 1;
  d->state = TL_DIR_DONE;
}

static void stop_on_read_error(struct tl_relay *r, struct tl_dir *d,
                               ptrdiff_t err) {
  d->from->gone = d->from->failed = 1;
  fail(r, d->from->in_name, (int)err);
  d->state = TL_DIR_DONE;
}

/* Writes what is buffered, then reads more, until something would
 * block or the direction is done. */
static void pump_dir(struct tl_relay *r, struct tl_dir *d) {
  while (d->state != TL_DIR_DONE) {
    ptrdiff_t n;

    if (end_gone(d->to) || d->from->failed) {
      /* The output took the bytes and failed to write them later. */
      if (local_output_failed(d->to)) {
        fail(r, d->to->out_name, tl_chan_output_error(d->to->chan));
        r->broken = 1;
      } else if (d->off < d->len) {
        fail(r, d->to->out_name, NP_EPIPE);
      }
      d->state = TL_DIR_DONE;
      return;
    }
    if (d->off < d->len) {
      n = end_write(d->to, d->buf + d->off, d->len - d->off);
      if (n == NP_EAGAIN)
        return;
      if (n < 0) {
        stop_on_write_error(r, d, n);
        return;
      }
      d->off += (size_t)n;
      d->bytes += (uint64_t)n;
      continue;
    }
    d->off = d->len = 0;
    if (d->state == TL_DIR_SHUT) {
      finish(r, d);
      return;
    }
    n = end_read(d->from, d->buf, d->cap);
    if (n > 0) {
      d->len = (size_t)n;
    } else if (n == NP_EAGAIN) {
      return;
    } else if (n == NP_EOF || n == 0) {
      /* 0 is an empty message: how np_shutdown ends a message-mode
       * stream on Windows, so it ends the input on both systems. */
      d->state = TL_DIR_SHUT;
    } else if (n != NP_EMSGSIZE || (n = grow(d)) != 0) {
      stop_on_read_error(r, d, n);
      return;
    }
  }
}

static int is_finished(const struct tl_relay *r) {
  int all = 1, i;

  for (i = 0; i < r->ndirs; i++)
    all = all && r->dirs[i].state == TL_DIR_DONE;
  if (all)
    return 1;
  if ((r->flags & TL_RELAY_END_ON_DIR0) && r->dirs[0].state == TL_DIR_DONE)
    return 1;
  return r->ndirs > 1 && (r->flags & TL_RELAY_END_ON_DIR1) &&
         r->dirs[1].state == TL_DIR_DONE;
}

int tl_relay_pump(struct tl_relay *r) {
  int pass, i;

  r->dirty = 0;
  /* A second pass lets one direction see an end that the other just
   * found gone. */
  for (pass = 0; pass < 2 && !r->finished; pass++) {
    for (i = 0; i < r->ndirs; i++)
      pump_dir(r, &r->dirs[i]);
    r->finished = r->broken || is_finished(r);
  }
  return r->finished;
}

/* The owned, live streams that were written to: the library may still
 * hold some of those bytes.  Sets *all_shut when each was shut down. */
static int streams_to_drain(const struct tl_relay *r, int *all_shut) {
  int n = 0, i;

  *all_shut = 1;
  for (i = 0; i < 2; i++) {
    const struct tl_end *e = &r->ends[i];

    if (e->stream != NULL && e->owned && e->wrote && !e->gone) {
      n++;
      *all_shut = *all_shut && e->shut;
    }
  }
  return n;
}

/*
 * np_write accepts bytes into the library's buffers, which the library
 * sends while the poller is waited on; it cannot say when they are all
 * out, and whatever is left when the process exits is lost.  So before
 * exiting, keep waiting until the peer is gone.  A peer that was shut
 * down reads the end of the stream only after every byte, and then
 * usually closes, so it gets a few seconds; a peer that was not may
 * never close, so it gets a moment, enough to drain the buffers to a
 * peer that reads.
 */
void tl_relay_linger(struct tl_relay *r, np_poll *poll) {
  uint64_t start = tl_sys_now_ms();
  int all_shut;

  while (streams_to_drain(r, &all_shut) > 0 && !tl_sys_signalled()) {
    uint64_t limit = all_shut ? LINGER_SHUT_MS : LINGER_OPEN_MS;
    uint64_t spent = tl_sys_now_ms() - start;
    np_event ev[16];
    int n, i;

    if (spent >= limit)
      return;
    n = np_poll_wait(poll, ev, 16, (int)(limit - spent));
    if (n < 0)
      return;
    for (i = 0; i < n; i++) {
      struct tl_end *e = tl_token_end(ev[i].token);

      if (ev[i].token != 0 && e->relay == r && (ev[i].events & NP_HUP))
        e->gone = 1;
    }
  }
}

void tl_relay_close(struct tl_relay *r) {
  int i;

  for (i = 0; i < 2; i++) {
    struct tl_end *e = &r->ends[i];

    if (e->owned) {
      np_close(e->stream);
      tl_chan_close(e->chan);
    }
    e->stream = NULL;
    e->chan = NULL;
  }
  for (i = 0; i < r->ndirs; i++) {
    free(r->dirs[i].buf);
    r->dirs[i].buf = NULL;
  }
}
