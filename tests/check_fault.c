/*
 * Nothing lost, nothing leaked: a scripted session over the public API
 * is run once untouched, then again with wrapped call number N failed,
 * for every N, through the test seam (src/common/seam.h; this program
 * links tests/libnpipe-seam.la).  There are two scripts, each a loop
 * test of its own: pipes (listen, connect, accept, a byte-mode echo with
 * shutdown, a message-mode exchange, close, poll free) and TCP (listen
 * on port 0 of 127.0.0.1, the address the listener got, a non-blocking
 * connect, accept, an echo both ways at once, a half-close each way,
 * close, poll free), which reaches Winsock and AFD on Windows.
 *
 * Every run must end either with the script complete (the fault was
 * harmless or retried) or with a clean NP_E* from a public call; never a
 * crash, a hang (every wait is bounded), wrong bytes, or anything left
 * behind: allocations, registered objects, descriptors (POSIX) or
 * handles (Windows) are back where they started.  Passes with the errors
 * of interest follow, and a check of the arguments of every call that
 * creates a descriptor or a pipe across all of those runs.
 */
#include "config.h"

#ifdef _WIN32
#include <wchar.h>
#include <winsock2.h>
#include <windows.h>
#else
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/seam.h"
#include "helpers.h"
#include "internal.h"
#ifdef _WIN32
#include "win/pipe.h"
#endif

/* Byte-mode named pipes on Windows have no half-close: np_shutdown only
 * stops local writes there (DESIGN, np_shutdown(3)). */
#ifdef _WIN32
#define SHUTDOWN_ENDS_BYTES 0
#else
#define SHUTDOWN_ENDS_BYTES 1
#endif

enum { TOK_L = 1, TOK_C, TOK_S, TOK_L2, TOK_C2, TOK_S2, NTOK };

/* More than the socket or pipe buffers hold, so that writes queue in
 * the library and drain as the server reads: echoed in ECHO_CHUNKs. */
#define ECHO_LEN 300000
#define ECHO_CHUNK 32768
#define BIG_MSG 5000
#define MAX_RUNS 20000

/* One run of the script and what it left. */
struct run {
  np_poll *poll;
  np_listener *l, *l2;
  np_stream *by_tok[NTOK];
  int err;           /* the first NP_E* a public call returned, or 0 */
  const char *where; /* the step that returned it */
  int hung;          /* a bounded wait ran out */
  int corrupt;       /* bytes or sizes differed */
  int done;          /* the script completed */
  uint64_t hup;      /* a token whose NP_HUP ends a wait, or 0 */
};

/* Longer than the library's own bounded retries (a send that fails for
 * lack of memory is tried for 5 s before the stream fails). */
static int wait_ms(void) { return 8000; }

static unsigned char pattern(size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u;

  return (unsigned char)(x >> 13 ^ x >> 24);
}

/* Records rc if it is an error; returns non-zero to stop the script.
 * NP_EAGAIN is an error only from calls that never return it (where
 * does not start "np_read", "np_write", "np_accept" or "np_poll_wait"):
 * EINTR maps to NP_EAGAIN, so a setup call could leak it. */
static int check(struct run *r, const char *where, ptrdiff_t rc) {
  static const char *const again_ok[] = {"np_read", "np_write", "np_accept",
                                         "np_poll_wait"};
  size_t i;

  if (rc >= 0)
    return 0;
  for (i = 0; rc == NP_EAGAIN && i < NP__ARRAY_SIZE(again_ok); i++)
    if (strncmp(where, again_ok[i], strlen(again_ok[i])) == 0)
      return 0;
  if (r->err == 0) {
    r->err = (int)rc;
    r->where = where;
  }
  return 1;
}

/* One wait of a script, bounded by deadline.  Returns the number of
 * events, or -1 to stop: an error, or the deadline passed (r->hung, with
 * what as the step). */
static int wait_until(struct run *r, uint64_t deadline, const char *what,
                      np_event *ev, int max) {
  uint64_t now = npt_now_ms();
  int n;

  if (now >= deadline) {
    r->where = what;
    r->hung = 1;
    return -1;
  }
  n = np_poll_wait(r->poll, ev, max, (int)(deadline - now));
  return check(r, "np_poll_wait", n) ? -1 : n;
}

/* Waits until a token has one of the bits want[token] asks for (or
 * NP_ERR / NP_HUP; tokens with want 0 are ignored).  An NP_ERR on any
 * stream ends the script with that stream's error: a failure the library
 * met in the background must reach the user this way.  While accepting,
 * an NP_HUP on the client (the server refused it) ends the script with
 * what np_read says then (NP_EOF, or an error). */
static int wait_any(struct run *r, const uint32_t want[NTOK]) {
  uint64_t deadline = npt_now_ms() + (uint64_t)wait_ms();
  np_event ev[16];

  for (;;) {
    int n = wait_until(r, deadline, "waiting", ev, 16), i, hit = 0;

    if (n < 0) {
      static char what[64];
      int t;

      if (!r->hung)
        return 1;
      /* Which wait ran out, for the failure message. */
      for (t = 0; t < NTOK && want[t] == 0; t++)
        ;
      snprintf(what, sizeof(what), "waiting for token %d events %#x", t,
               t < NTOK ? (unsigned)want[t] : 0u);
      r->where = what;
      return 1;
    }
    for (i = 0; i < n; i++) {
      uint64_t tok = ev[i].token;
      np_stream *s = tok < NTOK ? r->by_tok[tok] : NULL;

      if ((ev[i].events & NP_ERR) && s != NULL) {
        int e = np_stream_error(s);

        if (e != 0)
          return check(r, "np_stream_error", e);
      }
      if ((ev[i].events & NP_HUP) && s != NULL && tok == r->hup) {
        unsigned char b[1];
        ptrdiff_t rc = np_read(s, b, 1);

        if (rc < 0 && rc != NP_EAGAIN)
          return check(r, "np_read (peer gone)", rc);
      }
      if (tok < NTOK && want[tok] != 0 &&
          (ev[i].events & (want[tok] | NP_ERR | NP_HUP)))
        hit = 1;
    }
    if (hit)
      return 0;
  }
}

/* Waits until tok has one of bits (or NP_ERR / NP_HUP). */
static int wait_for(struct run *r, uint64_t tok, uint32_t bits) {
  uint32_t want[NTOK] = {0};

  want[tok] = bits;
  return wait_any(r, want);
}

static int write_all(struct run *r, uint64_t tok, const void *buf,
                     size_t len) {
  size_t off = 0;

  while (off < len) {
    ptrdiff_t n = np_write(r->by_tok[tok], (const char *)buf + off, len - off);

    if (check(r, "np_write", n))
      return 1;
    if (n == NP_EAGAIN) {
      if (wait_for(r, tok, NP_WRITABLE))
        return 1;
      continue;
    }
    off += (size_t)n;
  }
  return 0;
}

/* Reads into buf until len bytes came; returns 0 or non-zero to stop. */
static int read_all(struct run *r, uint64_t tok, unsigned char *buf,
                    size_t len) {
  size_t off = 0;

  while (off < len) {
    ptrdiff_t n = np_read(r->by_tok[tok], buf + off, len - off);

    if (check(r, "np_read", n))
      return 1;
    if (n == NP_EAGAIN) {
      if (wait_for(r, tok, NP_READABLE))
        return 1;
      continue;
    }
    off += (size_t)n;
  }
  return 0;
}

/* One whole message of exactly want bytes. */
static int read_msg(struct run *r, uint64_t tok, unsigned char *buf,
                    size_t cap, size_t want) {
  for (;;) {
    ptrdiff_t n = np_read(r->by_tok[tok], buf, cap);

    if (n == NP_EAGAIN) {
      if (wait_for(r, tok, NP_READABLE))
        return 1;
      continue;
    }
    if (n == NP_EMSGSIZE && cap < want)
      return 2; /* the caller retries with a larger buffer */
    if (check(r, "np_read (message)", n))
      return 1;
    if ((size_t)n != want)
      r->corrupt = 1;
    return (size_t)n != want;
  }
}

/* Reads until the end of the stream. */
static int read_eof(struct run *r, uint64_t tok) {
  unsigned char b[64];

  for (;;) {
    ptrdiff_t n = np_read(r->by_tok[tok], b, sizeof(b));

    if (n == NP_EOF)
      return 0;
    if (n >= 0) {
      r->corrupt = 1;
      return 1;
    }
    if (check(r, "np_read (eof)", n))
      return 1;
    if (wait_for(r, tok, NP_READABLE))
      return 1;
  }
}

/* Accepts tok's connection; ctok is its client. */
static int accept_one(struct run *r, np_listener *l, uint64_t ltok,
                      uint64_t tok, uint64_t ctok) {
  int stop = 0;

  r->hup = ctok;
  for (;;) {
    int e = np_accept(l, tok, NP_READABLE | NP_WRITABLE, &r->by_tok[tok]);

    if (check(r, "np_accept", e) || e == 0) {
      stop = e != 0;
      break;
    }
    if ((stop = wait_for(r, ltok, NP_READABLE)) != 0)
      break;
  }
  r->hup = 0;
  return stop;
}

static int same(struct run *r, const unsigned char *a, const unsigned char *b,
                size_t n) {
  if (memcmp(a, b, n) != 0)
    r->corrupt = 1;
  return r->corrupt;
}

/* Each end asks who is at the other: this very process. */
static int peers(struct run *r) {
  np_peer ps, pc;

  if (check(r, "np_stream_peer (server)",
            np_stream_peer(r->by_tok[TOK_S], &ps)) ||
      check(r, "np_stream_peer (client)",
            np_stream_peer(r->by_tok[TOK_C], &pc)))
    return 1;
  if (ps.pid != npt_self_pid() || pc.pid != npt_self_pid())
    r->corrupt = 1;
  return r->corrupt;
}

/* Byte mode: the client sends ECHO_LEN bytes, the server echoes them in
 * chunks as they come, the client reads them back, shuts down, and both
 * see the end. */
static int byte_echo(struct run *r, const char *name) {
  static unsigned char out[ECHO_LEN], back[ECHO_LEN], chunk[ECHO_CHUNK];
  size_t i, got = 0;

  for (i = 0; i < ECHO_LEN; i++)
    out[i] = pattern(i);
  if (check(r, "np_listen", np_listen(r->poll, name, NULL, TOK_L, &r->l)) ||
      check(r, "np_connect",
            np_connect(r->poll, name, NULL, TOK_C, NP_READABLE | NP_WRITABLE,
                       &r->by_tok[TOK_C])) ||
      accept_one(r, r->l, TOK_L, TOK_S, TOK_C) || peers(r) ||
      write_all(r, TOK_C, out, ECHO_LEN))
    return 1;
  while (got < ECHO_LEN) {
    size_t n = ECHO_LEN - got < sizeof(chunk) ? ECHO_LEN - got : sizeof(chunk);

    if (read_all(r, TOK_S, chunk, n) || write_all(r, TOK_S, chunk, n) ||
        read_all(r, TOK_C, back + got, n))
      return 1;
    got += n;
  }
  if (same(r, out, back, ECHO_LEN) ||
      check(r, "np_shutdown", np_shutdown(r->by_tok[TOK_C])) ||
      (SHUTDOWN_ENDS_BYTES && read_eof(r, TOK_S)))
    return 1;
  np_close(r->by_tok[TOK_S]);
  r->by_tok[TOK_S] = NULL;
  if (read_eof(r, TOK_C))
    return 1;
  np_close(r->by_tok[TOK_C]);
  r->by_tok[TOK_C] = NULL;
  return 0;
}

/* Message mode: "one", an empty message and a BIG_MSG one (first read
 * with too small a buffer), the last echoed back. */
static int message_exchange(struct run *r, const char *name) {
  static unsigned char big[BIG_MSG], in[BIG_MSG + 16];
  np_options o;
  size_t i;
  int rc;

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  for (i = 0; i < BIG_MSG; i++)
    big[i] = pattern(i + 7);
  if (check(r, "np_listen (message)",
            np_listen(r->poll, name, &o, TOK_L2, &r->l2)) ||
      check(r, "np_connect (message)",
            np_connect(r->poll, name, &o, TOK_C2, NP_READABLE | NP_WRITABLE,
                       &r->by_tok[TOK_C2])) ||
      accept_one(r, r->l2, TOK_L2, TOK_S2, TOK_C2) ||
      write_all(r, TOK_C2, "one", 3) ||
      check(r, "np_write (empty)", np_write(r->by_tok[TOK_C2], "", 0)) ||
      write_all(r, TOK_C2, big, BIG_MSG) ||
      read_msg(r, TOK_S2, in, sizeof(in), 3) ||
      same(r, in, (const void *)"one", 3) ||
      read_msg(r, TOK_S2, in, sizeof(in), 0))
    return 1;
  rc = read_msg(r, TOK_S2, in, 16, BIG_MSG);
  if (rc == 2)
    rc = read_msg(r, TOK_S2, in, sizeof(in), BIG_MSG);
  if (rc != 0 || same(r, in, big, BIG_MSG) ||
      write_all(r, TOK_S2, big, BIG_MSG))
    return 1;
  memset(in, 0, sizeof(in));
  return read_msg(r, TOK_C2, in, sizeof(in), BIG_MSG) ||
         same(r, in, big, BIG_MSG);
}

/* Both pipe sessions, byte and message mode, on names of their own. */
static int pipe_session(struct run *r) {
  char name[128], name2[128];

  npt_pipe_name(name, sizeof(name), "fault");
  npt_pipe_name(name2, sizeof(name2), "faultm");
  if (byte_echo(r, name) != 0 || message_exchange(r, name2) != 0)
    return 1;
  /* The core counts exactly the four objects still open. */
  if (np__poll_core(r->poll)->live != 4)
    r->corrupt = 1;
  return r->corrupt;
}

/* ---- the busy-server script ----------------------------------------------
 */

#define BUSY_WAIT_MS 30
#define BUSY_MAX 4   /* clients that may fit before the name is busy */
#define BUSY_TOK 100 /* + i: client i, outside by_tok */

/* Non-zero when ev reports that the server refused one of the clients
 * c[0, n) waiting in the backlog (its credentials could not be read,
 * say): that client sees its end, and the script ends with what its read
 * says. */
static int busy_refused(struct run *r, np_stream *const *c, int n,
                        const np_event *ev) {
  uint64_t t = ev->token;
  unsigned char b[1];
  ptrdiff_t rc;

  if (t < BUSY_TOK || t >= BUSY_TOK + (uint64_t)n ||
      !(ev->events & (NP_HUP | NP_ERR)))
    return 0;
  rc = np_read(c[t - BUSY_TOK], b, 1);
  /* Not "np_read ...": NP_EAGAIN here is an error too. */
  check(r, "refused: np_read", rc < 0 ? rc : NP_EIO);
  return 1;
}

/* Accepts the next connection into tok while the clients c[0, n) wait
 * in the backlog. */
static int busy_accept(struct run *r, np_stream *const *c, int n,
                       uint64_t tok) {
  uint64_t deadline = npt_now_ms() + (uint64_t)wait_ms();

  for (;;) {
    np_event ev[16];
    int e = np_accept(r->l, tok, NP_READABLE | NP_WRITABLE, &r->by_tok[tok]);
    int k;

    if (e == 0 || check(r, "np_accept", e))
      return e != 0;
    e = wait_until(r, deadline, "accepting a waiting client", ev, 16);
    if (e < 0)
      return 1;
    for (k = 0; k < e; k++)
      if (busy_refused(r, c, n, &ev[k]))
        return 1;
  }
}

/* Waits for the end of a connect that waits (s, reported as tok) while
 * the clients c[0, n) sit in the backlog: sets *err to 0 once connected,
 * or to its error.  The listener, readable all along with its backlog
 * full, is silenced meanwhile so that the waits sleep.  Returns non-zero
 * to stop (the wait failed or ran out, or a client was refused). */
static int connect_outcome(struct run *r, np_stream *s, uint64_t tok,
                           np_stream *const *c, int n, int *err) {
  uint64_t deadline = npt_now_ms() + (uint64_t)wait_ms();
  int stop = -1;

  (void)np_listener_set_interest(r->l, TOK_L, 0);
  while (stop < 0) {
    np_event ev[16];
    int got = wait_until(r, deadline, "a connect that waits", ev, 16), k;

    if (got < 0)
      stop = 1;
    for (k = 0; k < got && stop < 0; k++) {
      if (ev[k].token == tok) {
        *err = np_stream_error(s);
        stop = 0;
      } else if (busy_refused(r, c, n, &ev[k])) {
        stop = 1;
      }
    }
  }
  (void)np_listener_set_interest(r->l, TOK_L, NP_READABLE);
  return stop;
}

/* A listener with a backlog of one: clients that do not wait connect
 * until the name is busy (NP_EBUSY); one that waits briefly times out
 * (NP_ETIMEDOUT); once a client is accepted, one that waits gets in and
 * its byte arrives.  Sweeps the waiting connect (retries on the
 * poller's timers) and how its outcome is reported. */
static int busy_session(struct run *r) {
  np_stream *c[BUSY_MAX] = {NULL};
  np_options lo, wo;
  unsigned char b[1] = {0};
  int i, n = 0, e, stop = 0;
  char name[128];

  npt_pipe_name(name, sizeof(name), "faultb");
  memset(&lo, 0, sizeof(lo));
  lo.backlog = 1;
  memset(&wo, 0, sizeof(wo));
  wo.flags = NP_OPT_WAIT_BUSY;
  wo.timeout_ms = BUSY_WAIT_MS;
  if (check(r, "np_listen (backlog 1)",
            np_listen(r->poll, name, &lo, TOK_L, &r->l)))
    return 1;
  while (!stop && (e = np_connect(r->poll, name, NULL, BUSY_TOK + n,
                                  NP_READABLE, &c[n])) != NP_EBUSY) {
    stop = check(r, "np_connect (filling)", e);
    if (!stop && ++n == BUSY_MAX)
      r->corrupt = stop = 1; /* a backlog of one held them all */
  }
  if (!stop && n == 0)
    r->corrupt = stop = 1;
  if (!stop) {
    np_stream *extra;

    e = np_connect(r->poll, name, &wo, TOK_C, NP_WRITABLE, &extra);
    if (e == 0) {
      stop = connect_outcome(r, extra, TOK_C, c, n, &e);
      np_close(extra);
      /* Connected to a name that stayed busy? */
      if (!stop && e == 0)
        r->corrupt = stop = 1;
    }
    if (!stop && e != NP_ETIMEDOUT)
      stop = check(r, "np_connect (busy)", e);
  }
  /* The clients that came first are accepted (and closed) in order; the
   * first accept makes room for one that waits long enough. */
  for (i = 0; i < n && !stop; i++) {
    stop = busy_accept(r, c, n, TOK_S);
    if (stop)
      break;
    np_close(r->by_tok[TOK_S]);
    r->by_tok[TOK_S] = NULL;
    if (i == 0) {
      wo.timeout_ms = wait_ms();
      stop = check(r, "np_connect (waited)",
                   np_connect(r->poll, name, &wo, TOK_C2, NP_WRITABLE,
                              &r->by_tok[TOK_C2])) ||
             connect_outcome(r, r->by_tok[TOK_C2], TOK_C2, c, n, &e) ||
             check(r, "np_connect (waited)", e) ||
             write_all(r, TOK_C2, "w", 1);
    }
  }
  if (!stop)
    stop = accept_one(r, r->l, TOK_L, TOK_S2, TOK_C2) ||
           read_all(r, TOK_S2, b, 1);
  if (!stop && b[0] != 'w')
    r->corrupt = stop = 1;
  for (i = 0; i < n; i++)
    np_close(c[i]);
  return stop;
}

/* ---- the TCP script ------------------------------------------------------
 */

#define TCP_TAIL "tail"

/* Both ways at once: the client writes ECHO_LEN bytes while the server
 * echoes what arrives, in chunks, and the client reads it back.  Windows
 * TCP streams write straight into the socket (no library buffer), so
 * nobody may wait for a whole write before the other side reads: each
 * side moves what it can, and the script waits only when none could. */
static int tcp_echo(struct run *r) {
  static unsigned char out[ECHO_LEN], back[ECHO_LEN], chunk[ECHO_CHUNK];
  np_stream *c = r->by_tok[TOK_C], *s = r->by_tok[TOK_S];
  size_t i, sent = 0, got = 0, pend = 0, off = 0;

  for (i = 0; i < ECHO_LEN; i++)
    out[i] = pattern(i + 3);
  memset(back, 0, sizeof(back));
  while (got < ECHO_LEN) {
    uint32_t want[NTOK] = {0};
    int moved = 0;
    ptrdiff_t n;

    if (sent < ECHO_LEN) {
      size_t len = ECHO_LEN - sent < ECHO_CHUNK ? ECHO_LEN - sent : ECHO_CHUNK;

      if (check(r, "np_write (tcp client)", n = np_write(c, out + sent, len)))
        return 1;
      if (n > 0)
        sent += (size_t)n, moved = 1;
      else
        want[TOK_C] |= NP_WRITABLE;
    }
    if (pend == 0) {
      if (check(r, "np_read (tcp server)",
                n = np_read(s, chunk, sizeof(chunk))))
        return 1;
      if (n > 0)
        pend = (size_t)n, off = 0, moved = 1;
      else
        want[TOK_S] |= NP_READABLE;
    }
    if (pend > 0) {
      if (check(r, "np_write (tcp server)",
                n = np_write(s, chunk + off, pend)))
        return 1;
      if (n > 0)
        pend -= (size_t)n, off += (size_t)n, moved = 1;
      else
        want[TOK_S] |= NP_WRITABLE;
    }
    if (check(r, "np_read (tcp client)",
              n = np_read(c, back + got, ECHO_LEN - got)))
      return 1;
    if (n > 0)
      got += (size_t)n, moved = 1;
    else
      want[TOK_C] |= NP_READABLE;
    if (!moved && wait_any(r, want))
      return 1;
  }
  return same(r, out, back, ECHO_LEN);
}

/* Listens on a port the system picks and stores the address the
 * listener reports (checked: a real port).  Returns 0 or 1 to stop. */
static int tcp_listen_any(struct run *r, char *addr, size_t len) {
  int n;

  if (check(r, "np_listen (tcp)",
            np_listen(r->poll, "tcp:127.0.0.1:0", NULL, TOK_L, &r->l)))
    return 1;
  n = np_listener_address(r->l, addr, len);
  if (check(r, "np_listener_address", n))
    return 1;
  if (strncmp(addr, "tcp:127.0.0.1:", 14) != 0 ||
      strcmp(addr, "tcp:127.0.0.1:0") == 0 || (size_t)n != strlen(addr))
    r->corrupt = 1;
  return r->corrupt;
}

/* Listen on a port the system picks, connect to the address the listener
 * reports, wait for the connect's outcome, accept, echo, then half-close
 * each way: the server still writes after the client's FIN and the client
 * still reads after its own shutdown. */
static int tcp_session(struct run *r) {
  char addr[128];
  unsigned char tail[sizeof(TCP_TAIL) - 1];

  if (tcp_listen_any(r, addr, sizeof(addr)))
    return 1;
  if (check(r, "np_connect (tcp)",
            np_connect(r->poll, addr, NULL, TOK_C, NP_READABLE | NP_WRITABLE,
                       &r->by_tok[TOK_C])) ||
      wait_for(r, TOK_C, NP_WRITABLE) ||
      check(r, "np_stream_error (connect)",
            np_stream_error(r->by_tok[TOK_C])) ||
      accept_one(r, r->l, TOK_L, TOK_S, TOK_C) || tcp_echo(r) ||
      check(r, "np_shutdown (tcp client)", np_shutdown(r->by_tok[TOK_C])) ||
      read_eof(r, TOK_S) || write_all(r, TOK_S, TCP_TAIL, sizeof(tail)) ||
      check(r, "np_shutdown (tcp server)", np_shutdown(r->by_tok[TOK_S])) ||
      read_all(r, TOK_C, tail, sizeof(tail)) ||
      same(r, tail, (const void *)TCP_TAIL, sizeof(tail)) ||
      read_eof(r, TOK_C))
    return 1;
  /* The listener and both streams. */
  if (np__poll_core(r->poll)->live != 3)
    r->corrupt = 1;
  np_close(r->by_tok[TOK_S]);
  r->by_tok[TOK_S] = NULL;
  np_close(r->by_tok[TOK_C]);
  r->by_tok[TOK_C] = NULL;
  return r->corrupt;
}

/* A TCP connect that is refused: the listener's port is closed again
 * before the connect, so the outcome is NP_ECONNREFUSED, either at once
 * from np_connect or later as NP_ERR with np_stream_error, after which
 * every call on the stream returns it.  Sweeps the failure paths of a
 * connect (the socket error, the end of the address list) that the
 * other scripts never reach. */
static int tcp_refused(struct run *r) {
  uint64_t deadline = npt_now_ms() + (uint64_t)wait_ms();
  char addr[128];
  np_stream *c;
  int n, err;

  if (tcp_listen_any(r, addr, sizeof(addr)))
    return 1;
  np_listener_close(r->l);
  r->l = NULL;
  err = np_connect(r->poll, addr, NULL, TOK_C, NP_WRITABLE, &r->by_tok[TOK_C]);
  if (err == NP_ECONNREFUSED)
    return 0;
  if (check(r, "np_connect (refused)", err))
    return 1;
  c = r->by_tok[TOK_C];
  for (;;) {
    np_event ev[8];
    int i, done = 0;

    if ((n = wait_until(r, deadline, "waiting for the refusal", ev, 8)) < 0)
      return 1;
    for (i = 0; i < n; i++)
      done |=
          ev[i].token == TOK_C && (ev[i].events & (NP_WRITABLE | NP_ERR)) != 0;
    if (done)
      break;
  }
  err = np_stream_error(c);
  if (err != NP_ECONNREFUSED)
    return check(r, "np_stream_error (refused)", err != 0 ? err : NP_EIO);
  /* The outcome stays: writes and reads report it too. */
  if (np_write(c, "x", 1) != NP_ECONNREFUSED ||
      np_read(c, addr, sizeof(addr)) != NP_ECONNREFUSED)
    r->corrupt = 1;
  return r->corrupt;
}

/* The scripts, by loop-test index.  min_calls: the fewest wrapped calls
 * an untouched run makes, so that a sweep that reached nothing fails
 * (each class of fault must reach a fifth of that). */
static const struct script {
  const char *name;
  int (*session)(struct run *r); /* 0 when it went as planned */
  unsigned long min_calls;
} scripts[] = {{"pipes", pipe_session, 50},
               {"tcp", tcp_session, 50},
               {"tcp refused", tcp_refused, 20},
               {"busy pipe", busy_session, 20}};
#define NSCRIPTS ((int)NP__ARRAY_SIZE(scripts))

/* Runs script sc on a fresh poller, then closes whatever it left open:
 * after that nothing may be live. */
static void run_script(int sc, struct run *r) {
  int i;

  memset(r, 0, sizeof(*r));
  if (check(r, "np_poll_new", np_poll_new(&r->poll)))
    return;
  r->done = scripts[sc].session(r) == 0 && !r->corrupt;
  for (i = 0; i < NTOK; i++)
    if (r->by_tok[i] != NULL)
      np_close(r->by_tok[i]);
  if (r->l != NULL)
    np_listener_close(r->l);
  if (r->l2 != NULL)
    np_listener_close(r->l2);
  if (r->done && np__poll_core(r->poll)->live != 0)
    r->done = 0, r->corrupt = 1;
  np_poll_free(r->poll);
}

/* ---- what a run may leave ------------------------------------------------
 */

struct usage {
  long allocs;
  long pipes; /* Windows pipe objects alive */
  long fds;   /* descriptors (POSIX) or handles (Windows; -1 unknown) */
};

static long os_resources(void) {
#ifdef _WIN32
  DWORD n = 0;

  if (!GetProcessHandleCount(GetCurrentProcess(), &n) || n == 0)
    return -1; /* Wine answers 0 */
  return (long)n;
#else
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  long n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
#endif
}

static long usage_pipes(void) {
#ifdef _WIN32
  return np__pipe_live;
#else
  return 0;
#endif
}

static void usage_now(struct usage *u) {
  u->allocs = np__seam_allocs();
  u->pipes = usage_pipes();
  u->fds = os_resources();
}

/* Asserts that nothing of run n outlived it. */
static void check_clean(const struct run *r, const struct usage *before,
                        const char *what, unsigned long n) {
  const struct np__seam_call *c = np__seam_last_injected();
  int inj = np__seam_injected() > 0;
  struct usage after;
  char desc[256];

  snprintf(desc, sizeof(desc), "%s run %lu (fault in %s at %s:%d, err %ld)",
           what, n, inj ? np__seam_fn_name(c->fn) : "-",
           inj && c->file ? c->file : "-", inj ? c->line : 0,
           inj ? c->err : 0L);
  usage_now(&after);
  ck_assert_msg(!r->hung, "%s: hung (last error %s in %s)", desc,
                np_errname(r->err), r->where ? r->where : "-");
  ck_assert_msg(!r->corrupt, "%s: wrong bytes or object count", desc);
  ck_assert_msg(r->done || r->err != 0, "%s: stopped without an error", desc);
  ck_assert_msg(r->done || strcmp(np_errname(r->err), "NP_UNKNOWN") != 0,
                "%s: unknown error %d", desc, r->err);
  ck_assert_msg(inj || r->done, "%s: failed untouched: %s in %s", desc,
                np_errname(r->err), r->where);
  ck_assert_msg(after.allocs == before->allocs, "%s: %ld allocations left",
                desc, after.allocs - before->allocs);
#ifdef _WIN32
  static int warned_handles;

  ck_assert_msg(after.pipes == before->pipes, "%s: %ld pipe objects left",
                desc, after.pipes - before->pipes);
  if (before->fds < 0 || after.fds < 0) {
    if (!warned_handles++)
      printf("check_fault: GetProcessHandleCount unavailable (Wine "
             "answers 0): handle counts not checked\n");
    return;
  }
#endif
  ck_assert_msg(after.fds == before->fds, "%s: %ld descriptors left", desc,
                after.fds - before->fds);
}

struct arg_stats {
  unsigned long creates, bad;
  char first_bad[200];
};
static long arg_observer(struct np__seam_call *c, int after, void *ctx);

/* The call sites one pass reached, gathered by an observer: the seam's
 * own count is per process, and Windows runs every test in one. */
#define PASS_SITES 1024
struct pass_sites {
  const char *file[PASS_SITES];
  int line[PASS_SITES];
  unsigned long n, net; /* all; in the TCP and AFD files */
  struct arg_stats *args;
};

static long pass_observer(struct np__seam_call *c, int after, void *ctx) {
  struct pass_sites *ps = ctx;
  unsigned long i;

  if (!after && c->file != NULL) {
    for (i = 0; i < ps->n; i++)
      if (ps->line[i] == c->line &&
          (ps->file[i] == c->file || strcmp(ps->file[i], c->file) == 0))
        break;
    if (i == ps->n && i < PASS_SITES) {
      ps->file[i] = c->file;
      ps->line[i] = c->line;
      ps->n++;
      ps->net +=
          strstr(c->file, "tcp") != NULL || strstr(c->file, "afd") != NULL;
    }
  }
  return ps->args != NULL ? arg_observer(c, after, ps->args) : 0;
}

/* Runs script sc untouched, then with the nth call of class cls failed
 * with err (0: each function's usual error) for n = 1, 2, ... until a
 * run goes untouched.  must_complete: the fault must be invisible (EINTR
 * retried).  args, if not NULL, collects the argument checks of every
 * run.  Returns the number of runs; *total the calls counted in the
 * untouched run. */
static unsigned long sweep(int sc, const char *pass, unsigned cls, long err,
                           int must_complete, unsigned long *total,
                           struct arg_stats *args) {
  static struct pass_sites ps;
  struct usage before;
  struct run r;
  unsigned long n, runs = 1, errs = 0;
  char what[96];

  snprintf(what, sizeof(what), "%s: %s", scripts[sc].name, pass);
  memset(&ps, 0, sizeof(ps));
  ps.args = args;
  usage_now(&before);
  np__seam_reset();
  np__seam_observe(pass_observer, &ps);
  run_script(sc, &r);
  check_clean(&r, &before, what, 0);
  *total = np__seam_calls(cls);
  for (n = 1; n < MAX_RUNS; n++) {
    np__seam_reset();
    np__seam_fail_nth(n, cls, err);
    np__seam_observe(pass_observer, &ps);
    usage_now(&before);
    run_script(sc, &r);
    runs++;
    check_clean(&r, &before, what, n);
    if (np__seam_injected() == 0)
      break;
    errs += !r.done;
    ck_assert_msg(!must_complete || r.done,
                  "%s run %lu: %s at %s:%d not retried: %s in %s", what, n,
                  np__seam_fn_name(np__seam_last_injected()->fn),
                  np__seam_last_injected()->file,
                  np__seam_last_injected()->line, np_errname(r.err), r.where);
  }
  np__seam_reset();
  ck_assert_uint_lt(n, MAX_RUNS);
  printf("check_fault: %s: %lu calls untouched, %lu runs, %lu ended with "
         "an error, %lu completed; %lu call sites hit (%lu in TCP/AFD "
         "files), %lu so far\n",
         what, *total, runs, errs, runs - 1 - errs, ps.n, ps.net,
         (unsigned long)np__seam_sites());
  /* NPT_FAULT_SITES=1 lists them. */
  for (n = 0; getenv("NPT_FAULT_SITES") != NULL && n < ps.n; n++)
    printf("check_fault:   %s:%d\n", ps.file[n], ps.line[n]);
  fflush(stdout);
  return runs;
}

/* Every call, with its usual error; and the arguments of every call that
 * creates a descriptor or a pipe are right on every path, error paths
 * included. */
START_TEST(test_fault_every_call) {
  struct arg_stats st;
  unsigned long total, runs;

  memset(&st, 0, sizeof(st));
  runs =
      sweep(_i, "every call, usual errors", NP__SEAM_ANY, 0, 0, &total, &st);
  ck_assert_uint_gt(total, scripts[_i].min_calls);
  printf("check_fault: %s: %lu creating calls checked over %lu runs\n",
         scripts[_i].name, st.creates, runs);
  ck_assert_msg(st.bad == 0, "%lu bad calls, first: %s", st.bad, st.first_bad);
  ck_assert_uint_gt(st.creates, runs);
}
END_TEST

#ifdef _WIN32
#define NOMEM_ERR ERROR_NOT_ENOUGH_MEMORY
#define EINTR_ERR WAIT_TIMEOUT /* an empty wait: retried, like EINTR */
#define EBADF_ERR ERROR_INVALID_HANDLE
#else
#define NOMEM_ERR ENOMEM
#define EINTR_ERR EINTR
#define EBADF_ERR EBADF
#endif

START_TEST(test_fault_out_of_memory) {
  unsigned long total;

  sweep(_i, "out of memory", NP__SEAM_NOMEM, NOMEM_ERR, 0, &total, NULL);
  ck_assert_uint_gt(total, scripts[_i].min_calls / 5);
}
END_TEST

#ifdef _WIN32
START_TEST(test_fault_invalid_handle) {
  unsigned long total;

  sweep(_i, "ERROR_INVALID_HANDLE", NP__SEAM_HANDLE, ERROR_INVALID_HANDLE, 0,
        &total, NULL);
  ck_assert_uint_gt(total, scripts[_i].min_calls / 5);
}
END_TEST
#else
START_TEST(test_fault_too_many_files) {
  unsigned long total;

  sweep(_i, "EMFILE", NP__SEAM_NOFD, EMFILE, 0, &total, NULL);
  ck_assert_uint_gt(total, 3);
}
END_TEST

/* EINTR is retried where it can happen: every run completes. */
START_TEST(test_fault_interrupted) {
  unsigned long total;

  sweep(_i, "EINTR", NP__SEAM_INTR, EINTR, 1, &total, NULL);
  ck_assert_uint_gt(total, scripts[_i].min_calls / 5);
}
END_TEST
#endif

#ifdef _WIN32
/* A failed WSAStartup is reported and not remembered: the next TCP call
 * starts Winsock.  Only a process's first TCP call starts it, so this
 * test comes first; it says so when Winsock was up already. */
START_TEST(test_fault_wsastartup) {
  struct usage before, after;
  np_listener *l = NULL;
  np_poll *poll;
  int rc;

  usage_now(&before);
  ck_assert_int_eq(np_poll_new(&poll), 0);
  np__seam_reset();
  np__seam_fail_fn(np__seam_fn_id("WSAStartup"), 0, 1);
  rc = np_listen(poll, "tcp:127.0.0.1:0", NULL, 1, &l);
  if (np__seam_injected() == 0) {
    printf("check_fault: Winsock already started: WSAStartup not failed\n");
    ck_assert_int_eq(rc, 0);
  } else {
    /* WSASYSNOTREADY has no NP_E* of its own. */
    ck_assert_int_eq(rc, NP_EIO);
    ck_assert_int_eq(np_listen(poll, "tcp:127.0.0.1:0", NULL, 1, &l), 0);
  }
  np__seam_reset();
  np_listener_close(l);
  np_poll_free(poll);
  usage_now(&after);
  ck_assert_int_eq(after.allocs, before.allocs);
}
END_TEST
#endif

/* Every call of one function failing: the first public call that needs
 * it reports a clean error, and nothing is left. */
START_TEST(test_fault_each_function_always) {
  int fn, hit = 0;

  for (fn = 0; fn < np__seam_fn_count(); fn++) {
    struct usage before;
    struct run r;

    if (np__seam_fn_class(fn) & NP__SEAM_NOFAIL)
      continue;
    if (getenv("NPT_FAULT_TRACE") != NULL)
      printf("check_fault: %s fails always\n", np__seam_fn_name(fn)),
          fflush(stdout);
    np__seam_reset();
    /* An endless EINTR is no failure a program could end on (the
     * library rightly retries): those fail with EBADF instead. */
    np__seam_fail_fn(fn, np__seam_fns[fn].err == EINTR_ERR ? EBADF_ERR : 0, 0);
    usage_now(&before);
    run_script(_i, &r);
    /* A completion port that never answers again: np_poll_free leaks
     * what is still in flight rather than free memory the kernel may
     * yet write (poll-iocp.c, drain).  Every other check holds. */
    if (strcmp(np__seam_fn_name(fn), "GetQueuedCompletionStatusEx") == 0)
      before.allocs = np__seam_allocs(), before.pipes = usage_pipes();
    check_clean(&r, &before, np__seam_fn_name(fn), 0);
    hit += np__seam_injected() > 0;
  }
  np__seam_reset();
  printf("check_fault: %s: %d functions failed on every call\n",
         scripts[_i].name, hit);
  ck_assert_int_gt(hit, 10);
}
END_TEST

/* ---- arguments of every creating call ------------------------------------
 */

static void arg_bad(struct arg_stats *st, const struct np__seam_call *c,
                    const char *why) {
  if (st->bad++ == 0)
    snprintf(st->first_bad, sizeof(st->first_bad), "%s at %s:%d: %s",
             np__seam_fn_name(c->fn), c->file ? c->file : "-", c->line, why);
}

#ifdef _WIN32
/* Pipes: reject remote clients and carry a descriptor, not inheritable;
 * clients: identification-level SQOS; sockets and AFD handles (below). */
static long arg_observer(struct np__seam_call *c, int after, void *ctx) {
  struct arg_stats *st = ctx;
  const char *fn = np__seam_fn_name(c->fn);

  if (after)
    return 0;
  if (strcmp(fn, "CreateNamedPipeW") == 0) {
    const SECURITY_ATTRIBUTES *sa = (const void *)c->arg[7];

    st->creates++;
    if (!(c->arg[2] & PIPE_REJECT_REMOTE_CLIENTS))
      arg_bad(st, c, "no PIPE_REJECT_REMOTE_CLIENTS");
    if (sa == NULL || sa->lpSecurityDescriptor == NULL || sa->bInheritHandle)
      arg_bad(st, c, "no descriptor, or inheritable");
  } else if (strcmp(fn, "CreateFileW") == 0) {
    static const wchar_t afd[] = L"\\\\.\\GLOBALROOT\\Device\\Afd";
    const SECURITY_ATTRIBUTES *sa = (const void *)c->arg[3];
    const wchar_t *name = (const void *)c->arg[0];

    st->creates++;
    /* An AFD handle for socket polls: overlapped, on no pipe. */
    if (wcsncmp(name, afd, wcslen(afd)) == 0) {
      if (!(c->arg[5] & FILE_FLAG_OVERLAPPED))
        arg_bad(st, c, "AFD handle not overlapped");
    } else if ((c->arg[5] & SECURITY_VALID_SQOS_FLAGS) !=
               (SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION)) {
      arg_bad(st, c, "SQOS flags");
    }
    if (sa != NULL && sa->bInheritHandle)
      arg_bad(st, c, "inheritable");
  } else if (strcmp(fn, "WSASocketW") == 0) {
    /* Sockets: overlapped (AFD polls them) and not inheritable. */
    st->creates++;
    if ((c->arg[5] & (WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT)) !=
        (WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT))
      arg_bad(st, c, "not overlapped and non-inheritable");
  }
  return 0;
}
#else
/* Every descriptor is created close-on-exec (and sockets non-blocking). */
static long arg_observer(struct np__seam_call *c, int after, void *ctx) {
  struct arg_stats *st = ctx;
  const char *fn = np__seam_fn_name(c->fn);

  if (after)
    return 0;
  if (strcmp(fn, "socket") == 0) {
    st->creates++;
    if ((c->arg[1] & (SOCK_CLOEXEC | SOCK_NONBLOCK)) !=
        (SOCK_CLOEXEC | SOCK_NONBLOCK))
      arg_bad(st, c, "not SOCK_CLOEXEC | SOCK_NONBLOCK");
  } else if (strcmp(fn, "accept4") == 0) {
    st->creates++;
    if ((c->arg[3] & (SOCK_CLOEXEC | SOCK_NONBLOCK)) !=
        (SOCK_CLOEXEC | SOCK_NONBLOCK))
      arg_bad(st, c, "not SOCK_CLOEXEC | SOCK_NONBLOCK");
  } else if (strcmp(fn, "open") == 0) {
    st->creates++;
    if (!(c->arg[1] & O_CLOEXEC))
      arg_bad(st, c, "not O_CLOEXEC");
  } else if (strcmp(fn, "epoll_create1") == 0) {
    st->creates++;
    if (!(c->arg[0] & EPOLL_CLOEXEC))
      arg_bad(st, c, "not EPOLL_CLOEXEC");
  } else if (strcmp(fn, "eventfd") == 0) {
    st->creates++;
    if (!(c->arg[1] & EFD_CLOEXEC))
      arg_bad(st, c, "not EFD_CLOEXEC");
  }
  return 0;
}
#endif

static Suite *fault_suite(void) {
  Suite *s = suite_create("fault");
  TCase *tc = npt_tcase(s, "sweep");

#ifdef _WIN32
  tcase_add_test(tc, test_fault_wsastartup); /* first: see there */
#endif
  tcase_add_loop_test(tc, test_fault_every_call, 0, NSCRIPTS);
  tcase_add_loop_test(tc, test_fault_out_of_memory, 0, NSCRIPTS);
#ifdef _WIN32
  tcase_add_loop_test(tc, test_fault_invalid_handle, 0, NSCRIPTS);
#else
  tcase_add_loop_test(tc, test_fault_too_many_files, 0, NSCRIPTS);
  tcase_add_loop_test(tc, test_fault_interrupted, 0, NSCRIPTS);
#endif
  tcase_add_loop_test(tc, test_fault_each_function_always, 0, NSCRIPTS);
  return s;
}

int main(void) { return npt_run(fault_suite()); }
