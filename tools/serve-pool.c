/*
 * pipe-server --threads N: N threads (the caller's and N - 1 more) wait
 * on the server's one poller and share its sessions.
 *
 * Every stream and the listener is registered with NP_ONESHOT, so each
 * report reaches one thread and the object stays quiet until that thread
 * re-arms it.  A session is worked on by one thread at a time: the
 * thread that finds it free marks it held, pumps its relay and re-arms
 * its streams; a report (or a channel's wake-up) that finds it held only
 * leaves a pending mark and the report's bits, which the holder takes
 * before it lets go, so nothing that arrives meanwhile is lost.
 *
 * A report may still be in one thread's hands when another thread ends
 * the session, so tokens do not point at sessions: they name a slot
 * (index and generation) in a table whose slots are reused but never
 * freed while the pool runs, and a report for a slot's earlier use is
 * dropped.  One lock guards the slots, the session list, the counts,
 * the listener's interest and the exit status.  Under it a thread only
 * updates those, asks the library to re-arm or wake (which never
 * blocks), and writes a line to standard error; relaying, accepting,
 * starting commands and closing happen outside it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define POOL_EVENTS 8 /* reports one thread takes per wait */
#define ONESHOT_IN (NP_READABLE | NP_ONESHOT)

static int is_stopping(struct server *sv) {
  int stop;

  tl_lock_take(sv->lock);
  stop = sv->stop;
  tl_lock_give(sv->lock);
  return stop;
}

/* Asks every thread to leave its loop.  Called with the lock held.  One
 * wake-up reaches one thread; each thread that leaves wakes the next. */
static void stop_locked(struct server *sv) {
  sv->stop = 1;
  np_poll_wake(sv->poll);
}

static void fail_locked(struct server *sv, int status) {
  if (sv->status == 0)
    sv->status = status;
  stop_locked(sv);
}

/* ---- slots ------------------------------------------------------------ */

/* Takes a free slot, or a new one.  Called with the lock held. */
static struct session *slot_take(struct server *sv) {
  struct session *s = sv->free;

  if (s != NULL) {
    sv->free = s->next_free;
  } else {
    if (sv->nslots == sv->cap) {
      uint32_t cap = sv->cap == 0 ? 64 : sv->cap * 2;
      struct session **bigger = realloc(sv->slots, cap * sizeof(*bigger));

      if (bigger == NULL)
        return NULL;
      sv->slots = bigger;
      sv->cap = cap;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
      return NULL;
    s->index = sv->nslots;
    s->gen = 1;
    sv->slots[sv->nslots++] = s;
  }
  tl_relay_init(&s->relay);
  s->live = s->held = 1;
  s->pending = 0;
  s->events[0] = s->events[1] = 0;
  return s;
}

/* Gives a slot back; its tokens are stale from now on.  Called with the
 * lock held. */
static void slot_give(struct server *sv, struct session *s) {
  s->live = s->held = 0;
  s->gen++;
  s->next_free = sv->free;
  sv->free = s;
}

/* The live session a token names, or NULL for an earlier use of its
 * slot.  Called with the lock held. */
static struct session *slot_find(struct server *sv, uint64_t token) {
  uint32_t index = (uint32_t)(token & 0xffffffffu) >> 1;
  struct session *s;

  if (index >= sv->nslots)
    return NULL;
  s = sv->slots[index];
  return s->live && s->gen == (uint32_t)(token >> 32) ? s : NULL;
}

static void unlink_session(struct server *sv, struct session *s) {
  struct session **link = &sv->sessions;

  while (*link != s)
    link = &(*link)->next;
  *link = s->next;
}

/* ---- the listener ----------------------------------------------------- */

static void arm_listener_locked(struct server *sv) {
  if (sv->listener != NULL && !sv->stop)
    np_listener_set_interest(sv->listener, LISTENER_TOKEN, ONESHOT_IN);
}

/* A session left: the count drops, a full server listens again, and
 * --once ends with its only client.  Called with the lock held. */
static void session_left_locked(struct server *sv) {
  sv->count--;
  if (sv->paused) {
    sv->paused = 0;
    arm_listener_locked(sv);
  }
  if (sv->cfg->once && sv->listener == NULL && sv->count == 0)
    stop_locked(sv);
}

/* ---- working on a session --------------------------------------------- */

static uint32_t end_interest(const struct tl_relay *r,
                             const struct tl_end *e) {
  uint32_t want = 0;
  int i;

  for (i = 0; i < r->ndirs; i++) {
    const struct tl_dir *d = &r->dirs[i];

    /* The pump stopped at NP_EAGAIN: on a read with nothing buffered,
     * or on a write with bytes left over.  Level-triggered interest in
     * anything else would report at once, again and again. */
    if (d->state == TL_DIR_RUN && d->from == e && d->off >= d->len)
      want |= NP_READABLE;
    if (d->state != TL_DIR_DONE && d->to == e && d->off < d->len)
      want |= NP_WRITABLE;
  }
  return want;
}

/* Re-arms the streams that the relay waits on.  Channels need nothing:
 * they wake the poller on every change. */
static void arm_session(struct server *sv, struct session *s) {
  int i;

  for (i = 0; i < 2; i++) {
    struct tl_end *e = &s->relay.ends[i];
    uint32_t want;

    if (e->stream == NULL || (want = end_interest(&s->relay, e)) == 0)
      continue;
    np_stream_set_interest(e->stream, tl_serve_token(sv, s, i),
                           want | NP_ONESHOT);
  }
}

/* The relay is done: reports it and closes it, or with --once keeps it
 * held for the caller of tl_serve_pool to linger on. */
static void finish_session(struct server *sv, struct session *s) {
  tl_lock_take(sv->lock);
  /* Out of the list first: a channel scan must not meet a closed
   * channel.  The slot stays live (and held) until the streams are
   * closed, so reports still on their way find it held and are
   * dropped with it. */
  unlink_session(sv, s);
  tl_serve_report_end(sv, s);
  if (sv->cfg->once) {
    sv->lingering = s;
    session_left_locked(sv);
    tl_lock_give(sv->lock);
    return;
  }
  tl_lock_give(sv->lock);
  tl_relay_close(&s->relay);
  tl_lock_take(sv->lock);
  slot_give(sv, s);
  session_left_locked(sv);
  tl_lock_give(sv->lock);
}

/* Works on a session this thread holds until no work is pending, then
 * lets go of it (or ends it). */
static void run_session(struct server *sv, struct session *s) {
  for (;;) {
    uint32_t events[2];
    int i;

    if (tl_relay_pump(&s->relay)) {
      finish_session(sv, s);
      return;
    }
    /* Re-armed while still held: a report that comes at once finds the
     * session held and is taken below. */
    arm_session(sv, s);
    tl_lock_take(sv->lock);
    if (!s->pending) {
      s->held = 0;
      tl_lock_give(sv->lock);
      return;
    }
    s->pending = 0;
    events[0] = s->events[0];
    events[1] = s->events[1];
    s->events[0] = s->events[1] = 0;
    tl_lock_give(sv->lock);
    for (i = 0; i < 2; i++)
      if (events[i] != 0)
        tl_relay_event(&s->relay.ends[i], events[i]);
  }
}

/* Hands a stream's report to its session: works on it, or leaves it to
 * the thread that holds it. */
static void deliver(struct server *sv, uint64_t token, uint32_t events) {
  int end = (int)(token & 1u);
  struct session *s;

  tl_lock_take(sv->lock);
  s = slot_find(sv, token);
  if (s == NULL || s->held) {
    if (s != NULL) {
      s->pending = 1;
      s->events[end] |= events;
    }
    tl_lock_give(sv->lock);
    return;
  }
  s->held = 1;
  tl_lock_give(sv->lock);
  tl_relay_event(&s->relay.ends[end], events);
  run_session(sv, s);
}

/* A wake-up carries no token: finds the sessions whose channel changed
 * and works on those that no other thread holds. */
static void scan_channels(struct server *sv) {
  struct session *due = NULL, *s;

  tl_lock_take(sv->lock);
  for (s = sv->sessions; s != NULL; s = s->next) {
    tl_chan *c = s->relay.ends[1].chan;

    if (c == NULL || !tl_chan_changed(c))
      continue;
    if (s->held) {
      s->pending = 1;
    } else {
      s->held = 1;
      s->next_due = due;
      due = s;
    }
  }
  tl_lock_give(sv->lock);
  while (due != NULL) {
    s = due;
    due = s->next_due;
    run_session(sv, s);
  }
}

/* ---- accepting -------------------------------------------------------- */

/* Reserves a place for one more client: a held slot, counted.  NULL when
 * the server is full (the listener then stays disarmed until a session
 * leaves), stopping, or out of memory. */
static struct session *reserve(struct server *sv) {
  struct session *s = NULL;
  int cap = sv->cfg->max_clients;

  tl_lock_take(sv->lock);
  if (sv->stop || sv->listener == NULL) {
    /* Stopping, or --once has its client. */
  } else if (cap > 0 && sv->count >= cap) {
    sv->paused = 1;
  } else if ((s = slot_take(sv)) != NULL) {
    sv->count++;
    snprintf(s->name, sizeof(s->name), "client %u", ++sv->accepted);
  } else {
    tl_error("%s: %s", sv->cfg->listen_address, np_strerror(NP_ENOMEM));
  }
  tl_lock_give(sv->lock);
  return s;
}

static void unreserve(struct server *sv, struct session *s) {
  tl_lock_take(sv->lock);
  sv->accepted--;
  slot_give(sv, s);
  session_left_locked(sv);
  tl_lock_give(sv->lock);
}

/* Sets up an accepted client.  Returns 0, or an exit status for --once. */
static int setup(struct server *sv, struct session *s) {
  struct tl_end *c = &s->relay.ends[0];
  int err;

  c->owned = 1;
  c->in_name = c->out_name = s->name;
  err = tl_serve_setup_peer(sv, s);
  if (err == 0 && tl_relay_start(&s->relay) != 0) {
    tl_error("%s: %s", s->name, np_strerror(NP_ENOMEM));
    err = TL_EXIT_RUNTIME;
  }
  return err;
}

/* Accepts one client into a reserved slot and serves it.  Returns 0, or
 * NP_EAGAIN when none waits (or another NP_E*). */
static int accept_one(struct server *sv, struct session *s) {
  struct tl_end *c = &s->relay.ends[0];
  int err, status;

  /* Accepted without interest, and armed by the first pump once it is
   * in the list: armed at once, its first report could reach another
   * thread before the session is complete. */
  err = np_accept(sv->listener, tl_serve_token(sv, s, 0), 0, &c->stream);
  if (err != 0) {
    unreserve(sv, s);
    return err;
  }
  if (tl_serve_admit(sv, s, c->stream) != 0) {
    np_close(c->stream);
    c->stream = NULL;
    unreserve(sv, s);
    return 0;
  }
  status = setup(sv, s);
  tl_lock_take(sv->lock);
  if (sv->cfg->once) {
    /* Serve this client only: later ones find no server. */
    np_listener_close(sv->listener);
    sv->listener = NULL;
    sv->status = status;
  }
  if (status == 0) {
    s->next = sv->sessions;
    sv->sessions = s;
  }
  tl_lock_give(sv->lock);
  if (status != 0) {
    tl_relay_close(&s->relay);
    unreserve(sv, s);
    return 0;
  }
  run_session(sv, s);
  return 0;
}

/* The listener's report: accepts every waiting client, then re-arms it
 * unless the server is full. */
static void take_clients(struct server *sv) {
  struct session *s;

  while ((s = reserve(sv)) != NULL) {
    int err = accept_one(sv, s);

    if (err == NP_EAGAIN)
      break;
    if (err != 0) {
      /* Out of descriptors: the client waits; the next report tries
       * again. */
      tl_error("%s: %s", sv->cfg->listen_address, np_strerror(err));
      break;
    }
  }
  tl_lock_take(sv->lock);
  if (!sv->paused)
    arm_listener_locked(sv);
  tl_lock_give(sv->lock);
}

/* ---- the threads ------------------------------------------------------ */

static void work(struct server *sv) {
  while (!is_stopping(sv)) {
    np_event ev[POOL_EVENTS];
    int n = np_poll_wait(sv->poll, ev, POOL_EVENTS, -1), i;

    if (n < 0) {
      tl_error("poll: %s", np_strerror(n));
      tl_lock_take(sv->lock);
      fail_locked(sv, TL_EXIT_RUNTIME);
      tl_lock_give(sv->lock);
      break;
    }
    for (i = 0; i < n; i++) {
      if (ev[i].token == LISTENER_TOKEN)
        take_clients(sv);
      else
        deliver(sv, ev[i].token, ev[i].events);
    }
    if (sv->cfg->mode == TL_SERVE_EXEC)
      scan_channels(sv);
    if (tl_sys_signalled()) {
      tl_lock_take(sv->lock);
      stop_locked(sv);
      tl_lock_give(sv->lock);
    }
  }
  /* Pass the stop on to a thread still waiting. */
  np_poll_wake(sv->poll);
}

static void worker_main(void *arg) {
  struct server *sv = arg;

  work(sv);
  tl_lock_take(sv->lock);
  sv->running--;
  tl_lock_broadcast(sv->lock);
  tl_lock_give(sv->lock);
}

static int start_workers(struct server *sv) {
  int i, err;

  for (i = 1; i < sv->cfg->threads; i++) {
    tl_lock_take(sv->lock);
    sv->running++;
    tl_lock_give(sv->lock);
    if ((err = tl_thread_start(worker_main, sv)) != 0) {
      tl_error("thread: %s", np_strerror(err));
      tl_lock_take(sv->lock);
      sv->running--;
      fail_locked(sv, TL_EXIT_RUNTIME);
      tl_lock_give(sv->lock);
      return err;
    }
  }
  return 0;
}

static void join_workers(struct server *sv) {
  tl_lock_take(sv->lock);
  while (sv->running > 0)
    tl_lock_wait(sv->lock);
  tl_lock_give(sv->lock);
}

/* With the other threads gone: --once lingers on its client as on one
 * thread, with the tokens and interest that tl_relay_linger knows. */
static void linger(struct server *sv) {
  struct session *s = sv->lingering;
  int i;

  if (s == NULL)
    return;
  for (i = 0; i < 2; i++) {
    struct tl_end *e = &s->relay.ends[i];

    if (e->stream != NULL)
      np_stream_set_interest(e->stream, tl_end_token(e), TL_STREAM_INTEREST);
  }
  tl_relay_linger(&s->relay, sv->poll);
}

/* Closes what is left, once only this thread runs. */
static void close_all(struct server *sv) {
  uint32_t i;

  while (sv->sessions != NULL) {
    struct session *s = sv->sessions;

    sv->sessions = s->next;
    tl_relay_close(&s->relay);
  }
  if (sv->lingering != NULL)
    tl_relay_close(&sv->lingering->relay);
  for (i = 0; i < sv->nslots; i++)
    free(sv->slots[i]);
  free(sv->slots);
  sv->slots = NULL;
  sv->nslots = sv->cap = 0;
  sv->free = sv->lingering = NULL;
}

int tl_serve_pool(struct server *sv) {
  if ((sv->lock = tl_lock_new()) == NULL) {
    tl_error("%s", np_strerror(NP_ENOMEM));
    return TL_EXIT_RUNTIME;
  }
  np_listener_set_interest(sv->listener, LISTENER_TOKEN, ONESHOT_IN);
  if (start_workers(sv) == 0)
    work(sv);
  join_workers(sv);
  if (!tl_sys_signalled())
    linger(sv);
  close_all(sv);
  tl_lock_free(sv->lock);
  sv->lock = NULL;
  return sv->status;
}
