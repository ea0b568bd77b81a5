/*
 * np_listen and np_accept on a pipe name: the listener holds a backlog
 * of instances, each with a ConnectNamedPipe in flight (the connect
 * slot).  A connected instance waits on the ready list, which makes the
 * listener readable; np_accept creates its replacement and hands it out
 * as a stream.  So while connections wait the instances exist (clients
 * see ERROR_PIPE_BUSY, never a missing name), and as soon as one is
 * accepted a new one listens.
 *
 * A client can arrive between CreateNamedPipeW and ConnectNamedPipe:
 * ConnectNamedPipe then fails with ERROR_PIPE_CONNECTED, or with
 * ERROR_NO_DATA if the client already left (its bytes are still
 * readable, then the end of the stream).  Both are connections, and as
 * errors they queue no packet: the launch completes them at once.
 *
 * Healing.  A replacement that cannot be made (CreateNamedPipeW or
 * ConnectNamedPipe failing, say for lack of resources) is tried again on
 * the poller's timer, backing off from 1 ms to HEAL_MAX_MS, so that the
 * listener does not go silent while clients wait for it.  An error that
 * retries do not fix -- one that is not transient, or HEAL_TRIES
 * failures in a row -- is reported once: NP_ERR on the listener's
 * token, and np_accept returns it once no connection is waiting.
 * Transient errors are still retried after that, every HEAL_MAX_MS.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define HEAL_MAX_MS 1000
#define HEAL_TRIES 12 /* about two seconds of failures before reporting */

struct inst_list {
  struct np__pipe *head, *tail;
};

struct np__pipe_listener {
  np_listener base;
  np_poll *poll;
  wchar_t *path;
  char *address; /* "pipe:NAME" */
  PSECURITY_DESCRIPTOR sd;
  uint32_t flags;
  size_t write_limit;
  int backlog;
  int count;                  /* instances held: listening and ready */
  int connect_err;            /* NP_E* of the last failed connect, or 0 */
  struct inst_list listening; /* ConnectNamedPipe in flight */
  struct inst_list ready;     /* connected, oldest first */
  /* Healing: the next refill after a failed one. */
  struct np__timer heal;
  unsigned heal_ms;        /* its back-off */
  int heal_tries;          /* refills failed in a row */
  int err;                 /* for np_accept to return once, or 0 */
  unsigned char reported;  /* these failures were reported */
  unsigned char launching; /* instance_new is starting a connect */
};

static void refill_failed(struct np__pipe_listener *l, int err);

static void list_push(struct inst_list *list, struct np__pipe *p) {
  p->inst_next = NULL;
  p->inst_prev = list->tail;
  if (list->tail != NULL)
    list->tail->inst_next = p;
  else
    list->head = p;
  list->tail = p;
}

static void list_remove(struct inst_list *list, struct np__pipe *p) {
  if (p->inst_prev != NULL)
    p->inst_prev->inst_next = p->inst_next;
  else
    list->head = p->inst_next;
  if (p->inst_next != NULL)
    p->inst_next->inst_prev = p->inst_prev;
  else
    list->tail = p->inst_prev;
  p->inst_next = p->inst_prev = NULL;
}

static void connect_done(struct np__op *op, DWORD err, DWORD bytes) {
  struct np__pipe *p = NP__CONTAINER_OF(op, struct np__pipe, connect_op);
  struct np__pipe_listener *l = p->listener;

  NP__UNUSED(bytes);
  p->connecting = 0;
  if (l != NULL) {
    list_remove(&l->listening, p);
    if (err == 0 || err == ERROR_PIPE_CONNECTED || err == ERROR_NO_DATA) {
      p->connected = 1;
      list_push(&l->ready, p);
      np__source_signal(&l->base.src, NP_READABLE);
    } else {
      /* The instance is broken: it goes, and another replaces it (a
       * failure inside the launch is instance_new's to report). */
      l->connect_err = np__error_from_win32(err);
      l->count--;
      p->listener = NULL;
      np__pipe_discard(p);
      if (!l->launching)
        refill_failed(l, l->connect_err);
    }
  }
  np__pipe_op_end(p);
}

static void launch_connect(struct np__pipe *p) {
  BOOL ok;

  p->connecting = 1;
  p->connect_op.complete = connect_done;
  np__pipe_op_begin(p, &p->connect_op);
  ok = ConnectNamedPipe(p->handle, &p->connect_op.ov);
  np__pipe_op_launched(p, &p->connect_op, ok, 0);
}

/* Creates one instance and starts its connect.  The first one claims the
 * name: if it exists, ERROR_ACCESS_DENIED (or ERROR_PIPE_BUSY when its
 * server allows one instance) means someone else serves it. */
static int instance_new(struct np__pipe_listener *l, int first) {
  SECURITY_ATTRIBUTES sa = {sizeof(sa), l->sd, FALSE};
  DWORD open = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
  DWORD mode = PIPE_WAIT;
  struct np__pipe *p;
  HANDLE h;
  int err;

  if (first)
    open |= FILE_FLAG_FIRST_PIPE_INSTANCE;
  if (l->flags & NP_OPT_MESSAGE)
    mode |= PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE;
  if (!(l->flags & NP_OPT_ALLOW_REMOTE))
    mode |= PIPE_REJECT_REMOTE_CLIENTS;
  h = CreateNamedPipeW(l->path, open, mode, PIPE_UNLIMITED_INSTANCES,
                       NP__PIPE_BUFFER, NP__PIPE_BUFFER, 0, &sa);
  if (h == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError();

    if (first && (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY))
      return NP_EADDRINUSE;
    return np__error_from_win32(e);
  }
  if ((err = np__pipe_new(l->poll, h, l->flags, l->write_limit, 1, &p))) {
    CloseHandle(h);
    return err;
  }
  p->listener = l;
  list_push(&l->listening, p);
  l->count++;
  /* A connect that fails at once is this creation's error: refill
   * would otherwise replace the instance forever. */
  l->connect_err = 0;
  l->launching = 1;
  launch_connect(p);
  l->launching = 0;
  return l->connect_err;
}

/* Creates instances until the backlog is whole again.  Returns 0 or the
 * error of the first creation that failed. */
static int refill(struct np__pipe_listener *l) {
  int err = 0;

  while (l->count < l->backlog && (err = instance_new(l, 0)) == 0)
    ;
  return err;
}

/* Errors that may go away by themselves: resources and quotas (unknown
 * errors, NP_EIO, among them), and an instance limit. */
static int transient(int err) {
  return err == NP_ENOMEM || err == NP_ENOBUFS || err == NP_EMFILE ||
         err == NP_EBUSY || err == NP_EIO;
}

/* A refill failed with err: report it if retries do not fix it, and try
 * again later if they may. */
static void refill_failed(struct np__pipe_listener *l, int err) {
  int again = transient(err);

  l->heal_tries++;
  if (!l->reported && (!again || l->heal_tries >= HEAL_TRIES)) {
    l->reported = 1;
    l->err = err;
    np__source_signal(&l->base.src, NP_ERR);
  }
  if (!again || l->heal.armed)
    return;
  np__timer_start(np__poll_core(l->poll), &l->heal, l->heal_ms);
  l->heal_ms = l->heal_ms * 2 < HEAL_MAX_MS ? l->heal_ms * 2 : HEAL_MAX_MS;
}

/* Refills, and heals or reports when that fails. */
static void refill_or_heal(struct np__pipe_listener *l) {
  int err = refill(l);

  if (err != 0) {
    refill_failed(l, err);
    return;
  }
  l->heal_ms = 1;
  l->heal_tries = 0;
  l->reported = 0;
}

static void on_heal(struct np__timer *t) {
  refill_or_heal(NP__CONTAINER_OF(t, struct np__pipe_listener, heal));
}

static int listener_accept(np_listener *base, np_poll *poll, uint64_t token,
                           uint32_t interest, np_stream **out) {
  struct np__pipe_listener *l =
      NP__CONTAINER_OF(base, struct np__pipe_listener, base);
  struct np__pipe *p;
  int err;

  /* Instances that failed are replaced now rather than at the timer. */
  if (l->count < l->backlog)
    refill_or_heal(l);
  if ((p = l->ready.head) == NULL) {
    np__source_clear(&base->src, NP_READABLE);
    if ((err = l->err) == 0)
      return NP_EAGAIN;
    l->err = 0;
    np__source_clear(&base->src, NP_ERR);
    return err;
  }
  if (poll != l->poll && (err = np__pipe_move(p, poll)) != 0)
    return err; /* it stays first in line */
  list_remove(&l->ready, p);
  p->connected = 0;
  p->listener = NULL;
  l->count--;
  refill_or_heal(l);
  if (l->ready.head == NULL)
    np__source_clear(&base->src, NP_READABLE);
  np__pipe_open(p, token, interest);
  *out = &p->stream;
  return 0;
}

static int listener_address(np_listener *base, char *buf, size_t len) {
  struct np__pipe_listener *l =
      NP__CONTAINER_OF(base, struct np__pipe_listener, base);
  size_t n = strlen(l->address);

  if (n >= len)
    return NP_ENAMETOOLONG;
  memcpy(buf, l->address, n + 1);
  return (int)n;
}

static void drop_all(struct inst_list *list) {
  struct np__pipe *p;

  while ((p = list->head) != NULL) {
    list_remove(list, p);
    p->listener = NULL;
    p->connected = 0;
    np__pipe_discard(p);
  }
}

static void listener_close(np_listener *base) {
  struct np__pipe_listener *l =
      NP__CONTAINER_OF(base, struct np__pipe_listener, base);

  np__source_deregister(&base->src);
  np__timer_stop(np__poll_core(l->poll), &l->heal);
  drop_all(&l->listening);
  drop_all(&l->ready);
  np__security_free(l->sd);
  free(l->path);
  free(l->address);
  free(l);
}

static void on_orphan(struct np__source *src) {
  listener_close(NP__CONTAINER_OF(src, np_listener, src));
}

static const struct np__listener_ops listener_ops = {
    listener_accept, listener_address, listener_close};
static const struct np__source_ops listener_source_ops = {NULL, on_orphan};

/* Allocates the listener and everything but its instances. */
static int listener_new(const struct np__address *addr,
                        const struct np__opts *opts,
                        struct np__pipe_listener **out) {
  struct np__pipe_listener *l = calloc(1, sizeof(*l));
  int err;

  *out = NULL;
  if (l == NULL)
    return NP_ENOMEM;
  l->address = malloc(strlen(addr->name) + sizeof("pipe:"));
  err = l->address == NULL ? NP_ENOMEM : np__pipe_path(addr, &l->path);
  if (err == 0)
    err = np__security_new(opts->sddl, &l->sd);
  if (err != 0) {
    free(l->path);
    free(l->address);
    free(l);
    return err;
  }
  strcpy(l->address, "pipe:");
  strcat(l->address, addr->name);
  l->flags = opts->flags;
  l->write_limit = opts->write_limit;
  l->backlog = opts->backlog;
  l->base.ops = &listener_ops;
  np__timer_init(&l->heal, on_heal);
  l->heal_ms = 1;
  *out = l;
  return 0;
}

int np__pipe_listen(np_poll *poll, const struct np__address *addr,
                    const struct np__opts *opts, uint64_t token,
                    np_listener **out) {
  struct np__pipe_listener *l;
  int err;

  /* A descriptor that would expose the pipe is refused before any
   * system call. */
  if (opts->sddl != NULL && np__sddl_check(opts->sddl) != 0)
    return NP_EINVAL;
  if ((err = listener_new(addr, opts, &l)) != 0)
    return err;
  l->poll = poll;
  np__source_register(np__poll_core(poll), &l->base.src, &listener_source_ops,
                      token, NP_READABLE);
  err = instance_new(l, 1);
  if (err == 0)
    err = refill(l);
  if (err != 0) {
    listener_close(&l->base);
    return err;
  }
  *out = &l->base;
  return 0;
}
