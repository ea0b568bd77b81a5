/*
 * Bad input, row by row: null pointers for every public call, malformed
 * addresses, invalid options and interest, closed peers, and zero-length
 * and oversized reads and writes, each with the exact result that each
 * backend gives.
 *
 * The table below is the test.  Every row runs as one iteration of a loop
 * test, asserts its backend's expected result, and checks that nothing
 * leaked: a failed call leaves its *out pointer NULL, registers nothing
 * with the poller (the core's count of live objects is back to zero after
 * every row), and a name that a failed np_listen was given can be listened
 * on at once.  After the run the suite prints the rows as Markdown
 * (scripts/bad-input-table.sh builds doc/bad-inputs.md from it), so the
 * published table is the tested one.
 *
 * Use after close or free is not a row: it is undefined behaviour, as the
 * man pages say.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

#include "helpers.h"
#include "internal.h"

#define TOK_L 1
#define TOK_C 2
#define TOK_S 3
#define WAIT_MS 10000

/* Results that are not a return value of their own. */
enum {
  R_VOID = 1000000, /* a void call that must do nothing (and not crash) */
  R_PARTIAL,        /* np_write accepted a part: 0 < n < len */
  R_SKIP            /* the row does not apply to this backend */
};

struct row {
  const char *input; /* what is wrong, Markdown */
  const char *call;  /* the call, Markdown */
  long posix, win;   /* expected result per backend */
  long (*run)(const struct row *r);
  const char *arg;   /* an address, for the address rows */
  const char *shown; /* shown instead of the result, when not NULL */
  np_options o;      /* options, for the option rows */
  uint32_t interest; /* interest, for the interest rows */
};

static np_poll *poll_;
static char name_[300];

/* Addresses built at start-up: long ones, and pipe names that must be
 * unique per process because Windows pipe names are global. */
static char pipe_247_[300], pipe_256_[300], pipe_257_[300], unix_long_[300],
    tcp_long_[320];
static char absent_[100], utf8_ok_[100], utf8_4_[100];

static void setup(void) {
  ck_assert_int_eq(np_poll_new(&poll_), 0);
  npt_pipe_name(name_, sizeof(name_), "bad");
}

/* Every row must leave the poller empty: np_close of a stream with bytes
 * still queued may keep it registered until they are gone, so wait for
 * that, boundedly. */
static void teardown(void) {
  struct np__poll_core *core = np__poll_core(poll_);
  np_event ev[8];
  int i;

  for (i = 0; i < 500 && core->live != 0; i++)
    ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 10), 0);
  ck_assert_msg(core->live == 0, "%u objects still registered",
                (unsigned)core->live);
  np_poll_free(poll_);
  poll_ = NULL;
}

/* ---- helpers ----------------------------------------------------------- */

static np_options no_opts(void) {
  np_options o;

  memset(&o, 0, sizeof(o));
  return o;
}

/* Listens on name_ with opts (NULL: defaults); the call must succeed. */
static np_listener *listen_ok(const np_options *opts) {
  np_listener *l = NULL;

  ck_assert_int_eq(np_listen(poll_, name_, opts, TOK_L, &l), 0);
  ck_assert_ptr_nonnull(l);
  return l;
}

/* The name of a failed np_listen is still free: listen and close. */
static void name_still_free(const char *name) {
  np_listener *l = NULL;

  ck_assert_int_eq(np_listen(poll_, name, NULL, TOK_L, &l), 0);
  np_listener_close(l);
}

/* Waits for the listener, then accepts one stream. */
static np_stream *accept_one(np_listener *l, uint32_t interest) {
  np_stream *s = NULL;
  int err;

  while ((err = np_accept(l, TOK_S, interest, &s)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS) != 0,
                  "no connection within %d ms", WAIT_MS);
  ck_assert_int_eq(err, 0);
  return s;
}

/* A listener on name_ and a connected pair, both ends with flags. */
static np_listener *open_pair(uint32_t flags, size_t write_limit,
                              np_stream **c, np_stream **s) {
  np_options o = no_opts();
  np_listener *l;

  o.flags = flags;
  o.write_limit = write_limit;
  l = listen_ok(&o);
  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C, NP_READABLE | NP_WRITABLE, c), 0);
  *s = accept_one(l, NP_READABLE);
  return l;
}

static void close_pair(np_listener *l, np_stream *c, np_stream *s) {
  np_close(s);
  np_close(c);
  np_listener_close(l);
}

/* Reads from s, waiting for it to be readable; returns np_read's result. */
static ptrdiff_t read_wait(np_stream *s, uint64_t tok, void *buf, size_t len) {
  ptrdiff_t r;

  while ((r = np_read(s, buf, len)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, tok, NP_READABLE, WAIT_MS) != 0,
                  "nothing to read within %d ms", WAIT_MS);
  return r;
}

/* No connection reached the listener (a failed np_connect made none). */
static void nothing_pending(np_listener *l) {
  np_stream *s = NULL;
  np_event ev[4];

  ck_assert_int_ge(np_poll_wait(poll_, ev, 4, 50), 0);
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s), NP_EAGAIN);
  ck_assert_ptr_null(s);
}

/* A sentinel that a call must overwrite with NULL on failure. */
static char not_set_;

static void *not_set(void) { return &not_set_; }

/* ---- the poller and the error table ------------------------------------ */

static long run_poll_new_null(const struct row *r) {
  NP__UNUSED(r);
  return np_poll_new(NULL);
}

static long run_wait_null_poll(const struct row *r) {
  np_event ev[4];

  NP__UNUSED(r);
  return np_poll_wait(NULL, ev, 4, 0);
}

static long run_wait_null_events(const struct row *r) {
  NP__UNUSED(r);
  return np_poll_wait(poll_, NULL, 4, 0);
}

/* r->interest carries max_events. */
static long run_wait_max_events(const struct row *r) {
  np_event ev[4];

  return np_poll_wait(poll_, ev, (int)(int32_t)r->interest, 0);
}

/* A wake-up first: the wait returns at once whatever its timeout
 * (r->interest carries it). */
static long run_wait_woken(const struct row *r) {
  np_event ev[4];

  ck_assert_int_eq(np_poll_wake(poll_), 0);
  return np_poll_wait(poll_, ev, 4, (int)(int32_t)r->interest);
}

static long run_wake_null(const struct row *r) {
  NP__UNUSED(r);
  return np_poll_wake(NULL);
}

static long run_free_null(const struct row *r) {
  NP__UNUSED(r);
  np_poll_free(NULL);
  return R_VOID;
}

static const int unknown_codes[] = {0, 1, -31, 100, INT_MIN, INT_MAX};

static long run_strerror_unknown(const struct row *r) {
  size_t i;

  NP__UNUSED(r);
  for (i = 0; i < NP__ARRAY_SIZE(unknown_codes); i++)
    ck_assert_str_eq(np_strerror(unknown_codes[i]), "unknown error");
  return 0;
}

static long run_errname_unknown(const struct row *r) {
  size_t i;

  NP__UNUSED(r);
  for (i = 0; i < NP__ARRAY_SIZE(unknown_codes); i++)
    ck_assert_str_eq(np_errname(unknown_codes[i]), "NP_UNKNOWN");
  return 0;
}

/* ---- listeners: null pointers ------------------------------------------ */

static long run_listen_null_poll(const struct row *r) {
  np_listener *l = not_set();
  int err = np_listen(NULL, name_, NULL, TOK_L, &l);

  NP__UNUSED(r);
  ck_assert_ptr_null(l);
  name_still_free(name_);
  return err;
}

static long run_listen_null_address(const struct row *r) {
  np_listener *l = not_set();
  int err = np_listen(poll_, NULL, NULL, TOK_L, &l);

  NP__UNUSED(r);
  ck_assert_ptr_null(l);
  return err;
}

static long run_listen_null_out(const struct row *r) {
  int err = np_listen(poll_, name_, NULL, TOK_L, NULL);

  NP__UNUSED(r);
  name_still_free(name_);
  return err;
}

static long run_accept_null_listener(const struct row *r) {
  np_stream *s = not_set();
  int err = np_accept(NULL, TOK_S, 0, &s);

  NP__UNUSED(r);
  ck_assert_ptr_null(s);
  return err;
}

/* A client waits; the bad np_accept (NULL out, or r->interest) leaves it
 * waiting for a good one. */
static long accept_bad(const struct row *r, int null_out) {
  np_listener *l = listen_ok(NULL);
  np_stream *c, *s = not_set();
  int err;

  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  ck_assert(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS) != 0);
  err = np_accept(l, TOK_S, r->interest, null_out ? NULL : &s);
  if (!null_out)
    ck_assert_ptr_null(s);
  s = accept_one(l, 0);
  close_pair(l, c, s);
  return err;
}

static long run_accept_null_out(const struct row *r) {
  return accept_bad(r, 1);
}

static long run_accept_interest(const struct row *r) {
  return accept_bad(r, 0);
}

/* np_accept_to with a NULL poller (r->interest 0) or listener (1). */
static long run_accept_to_null(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  np_stream *s = not_set();
  int err = r->interest == 0 ? np_accept_to(l, NULL, TOK_S, 0, &s)
                             : np_accept_to(NULL, poll_, TOK_S, 0, &s);

  ck_assert_ptr_null(s);
  np_listener_close(l);
  return err;
}

static long run_accept_none(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  np_stream *s = not_set();
  int err = np_accept(l, TOK_S, 0, &s);

  NP__UNUSED(r);
  ck_assert_ptr_null(s);
  np_listener_close(l);
  return err;
}

/* ---- listeners: address, interest, close ------------------------------- */

static long run_address_null_listener(const struct row *r) {
  char buf[64];

  NP__UNUSED(r);
  return np_listener_address(NULL, buf, sizeof(buf));
}

/* r->interest selects the bad argument: 0 NULL buf, 1 len 0, 2 len one
 * short of the NUL, 3 len just enough (the control). */
static long run_address_len(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  char buf[300];
  size_t want = strlen(name_);
  int err;

  memset(buf, 'x', sizeof(buf));
  switch (r->interest) {
  case 0:
    err = np_listener_address(l, NULL, sizeof(buf));
    break;
  case 1:
    err = np_listener_address(l, buf, 0);
    break;
  case 2:
    err = np_listener_address(l, buf, want);
    break;
  default:
    err = np_listener_address(l, buf, want + 1);
    ck_assert_int_eq(err, (int)want);
    ck_assert_str_eq(buf, name_);
    err = 0;
  }
  np_listener_close(l);
  return err;
}

static long run_listener_interest_null(const struct row *r) {
  return np_listener_set_interest(NULL, TOK_L, r->interest);
}

/* A refused interest change keeps the old token and interest: the next
 * client is still reported with TOK_L. */
static long run_listener_interest(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  np_stream *c, *s;
  int err = np_listener_set_interest(l, 99, r->interest);

  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, 0);
  close_pair(l, c, s);
  return err;
}

static long run_listener_close_null(const struct row *r) {
  NP__UNUSED(r);
  np_listener_close(NULL);
  return R_VOID;
}

/* ---- addresses ---------------------------------------------------------- */

static long run_listen_addr(const struct row *r) {
  np_listener *l = not_set();
  int err = np_listen(poll_, r->arg, NULL, TOK_L, &l);

  if (err != 0)
    ck_assert_ptr_null(l);
  np_listener_close(l);
  return err;
}

static long run_connect_addr(const struct row *r) {
  np_stream *s = not_set();
  int err = np_connect(poll_, r->arg, NULL, TOK_C, 0, &s);

  if (err != 0)
    ck_assert_ptr_null(s);
  np_close(s);
  return err;
}

/* A remote pipe name: Windows opens it in the background, so its error
 * comes through np_stream_error once the stream is writable; POSIX
 * refuses it at once. */
static long run_connect_remote(const struct row *r) {
  np_stream *s = not_set();
  int err = np_connect(poll_, r->arg, NULL, TOK_C, NP_WRITABLE, &s);

  if (err != 0) {
    ck_assert_ptr_null(s);
    return err;
  }
  ck_assert(npt_wait_token(poll_, TOK_C, NP_WRITABLE | NP_ERR, WAIT_MS) != 0);
  err = np_stream_error(s);
  np_close(s);
  return err;
}

/* Listens on a free TCP port of 127.0.0.1 and writes its address. */
static np_listener *tcp_listen(char *addr, size_t len) {
  np_listener *l = NULL;

  ck_assert_int_eq(np_listen(poll_, "tcp:127.0.0.1:0", NULL, TOK_L, &l), 0);
  ck_assert_int_gt(np_listener_address(l, addr, len), 0);
  return l;
}

static long run_listen_tcp_taken(const struct row *r) {
  char addr[64];
  np_listener *l = tcp_listen(addr, sizeof(addr)), *l2 = not_set();
  int err = np_listen(poll_, addr, NULL, TOK_L, &l2);

  NP__UNUSED(r);
  ck_assert_ptr_null(l2);
  np_listener_close(l);
  return err;
}

/* A port that nothing listens on any more: the refusal comes through
 * np_stream_error once the stream is writable (or from np_connect). */
static long run_connect_tcp_refused(const struct row *r) {
  char addr[64];
  np_listener *l = tcp_listen(addr, sizeof(addr));
  np_stream *s = not_set();
  int err;

  NP__UNUSED(r);
  np_listener_close(l);
  err = np_connect(poll_, addr, NULL, TOK_C, NP_WRITABLE, &s);
  if (err != 0) {
    ck_assert_ptr_null(s);
    return err;
  }
  ck_assert(npt_wait_token(poll_, TOK_C, NP_WRITABLE, WAIT_MS) != 0);
  err = np_stream_error(s);
  ck_assert_int_eq(np_stream_error(s), 0); /* taken: gone */
  np_close(s);
  return err;
}

static long run_listen_taken(const struct row *r) {
  np_listener *l = listen_ok(NULL), *l2 = not_set();
  int err = np_listen(poll_, name_, NULL, TOK_L, &l2);

  NP__UNUSED(r);
  if (err != 0)
    ck_assert_ptr_null(l2);
  np_listener_close(l2); /* Wine: see wine_gaps */
  np_listener_close(l);
  name_still_free(name_);
  return err;
}

/* ---- options ------------------------------------------------------------ */

/* np_listen on name_ with r->o; on failure the name is still free. */
static long run_listen_opts(const struct row *r) {
  np_listener *l = not_set();
  int err = np_listen(poll_, name_, &r->o, TOK_L, &l);

  if (err != 0) {
    ck_assert_ptr_null(l);
    name_still_free(name_);
  }
  np_listener_close(l);
  return err;
}

/* np_connect with r->o to an absent name. */
static long run_connect_opts_absent(const struct row *r) {
  np_stream *s = not_set();
  int err = np_connect(poll_, absent_, &r->o, TOK_C, 0, &s);

  if (err != 0)
    ck_assert_ptr_null(s);
  np_close(s);
  return err;
}

/* np_connect with r->o (and r->interest) to a live default server; a
 * refused call leaves no connection behind. */
static long run_connect_opts_live(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  np_stream *c = not_set(), *s;
  int err = np_connect(poll_, name_, &r->o, TOK_C, r->interest, &c);

  if (err != 0) {
    ck_assert_ptr_null(c);
    nothing_pending(l);
  } else {
    s = accept_one(l, 0);
    np_close(s);
    np_close(c);
  }
  np_listener_close(l);
  return err;
}

/* A message-mode client of a byte-mode server.  POSIX refuses it before
 * connecting; a Windows client must open the pipe to learn its mode, so
 * the server sees a connection that ends at once (it reads NP_EOF). */
static long run_connect_message_to_byte(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  np_stream *c = not_set();
  int err = np_connect(poll_, name_, &r->o, TOK_C, 0, &c);

  ck_assert_int_ne(err, 0);
  ck_assert_ptr_null(c);
#ifdef _WIN32
  {
    np_stream *s = accept_one(l, NP_READABLE);
    char b;

    ck_assert_int_eq(read_wait(s, TOK_S, &b, 1), NP_EOF);
    np_close(s);
  }
#endif
  nothing_pending(l);
  np_listener_close(l);
  return err;
}

/* A byte-mode client (r->o) of a message-mode server. */
static long run_connect_to_message_server(const struct row *r) {
  np_options lo = no_opts();
  np_listener *l;
  np_stream *c = not_set(), *s;
  int err;

  lo.flags = NP_OPT_MESSAGE;
  l = listen_ok(&lo);
  err = np_connect(poll_, name_, &r->o, TOK_C, 0, &c);
  if (err != 0) {
    ck_assert_ptr_null(c);
  } else {
    s = accept_one(l, 0);
    np_close(s);
    np_close(c);
  }
  np_listener_close(l);
  return err;
}

/* The server appears, on its own poller in another thread, while a
 * connect waits without a limit. */
struct late_server {
  char name[300];
};

static void late_server_main(void *arg) {
  struct late_server *ls = arg;
  np_poll *p;
  np_listener *l;
  np_stream *s = NULL;
  np_event ev[4];
  int i;

  ck_assert_int_eq(np_poll_new(&p), 0);
  npt_sleep_ms(100);
  ck_assert_int_eq(np_listen(p, ls->name, NULL, TOK_L, &l), 0);
  for (i = 0; i < 1000 && np_accept(l, TOK_S, 0, &s) == NP_EAGAIN; i++)
    ck_assert_int_ge(np_poll_wait(p, ev, 4, 10), 0);
  ck_assert_ptr_nonnull(s);
  np_poll_free(p);
}

static long run_connect_wait_forever(const struct row *r) {
  struct late_server ls;
  npt_thread *t;
  np_stream *c = not_set();
  int err;

  memcpy(ls.name, name_, sizeof(ls.name));
  t = npt_thread_start(late_server_main, &ls);
  /* It returns at once, connecting; writable once the server came. */
  err = np_connect(poll_, name_, &r->o, TOK_C, NP_WRITABLE, &c);
  if (err == 0) {
    ck_assert(npt_wait_token(poll_, TOK_C, NP_WRITABLE, WAIT_MS) != 0);
    err = np_stream_error(c);
  }
  npt_thread_join(t);
  np_close(c);
  return err;
}

/* ---- streams: null pointers and interest ------------------------------- */

static long run_connect_null_poll(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  np_stream *c = not_set();
  int err = np_connect(NULL, name_, NULL, TOK_C, 0, &c);

  NP__UNUSED(r);
  ck_assert_ptr_null(c);
  nothing_pending(l);
  np_listener_close(l);
  return err;
}

static long run_connect_null_address(const struct row *r) {
  np_stream *c = not_set();
  int err = np_connect(poll_, NULL, NULL, TOK_C, 0, &c);

  NP__UNUSED(r);
  ck_assert_ptr_null(c);
  return err;
}

static long run_connect_null_out(const struct row *r) {
  np_listener *l = listen_ok(NULL);
  int err = np_connect(poll_, name_, NULL, TOK_C, 0, NULL);

  NP__UNUSED(r);
  nothing_pending(l);
  np_listener_close(l);
  return err;
}

static long run_stream_null(const struct row *r) {
  char buf[8];
  np_peer peer;

  /* r->interest picks the call. */
  switch (r->interest) {
  case 0:
    return np_read(NULL, buf, sizeof(buf));
  case 1:
    return np_write(NULL, "x", 1);
  case 2:
    return np_shutdown(NULL);
  case 3:
    return np_stream_set_interest(NULL, TOK_C, NP_READABLE);
  case 4:
    return np_stream_error(NULL);
  case 5:
    return np_stream_peer(NULL, &peer);
  case 7:
    return np_stream_peer_user(NULL, buf, sizeof(buf));
  case 8:
    return np_stream_peer_sid(NULL, buf, sizeof(buf));
  case 9:
    return np_stream_impersonate(NULL);
  default:
    np_close(NULL);
    return R_VOID;
  }
}

/* The peer's names and impersonation on a TCP stream: r->interest picks
 * the call, and bit 4 the connecting end instead of the accepted one. */
static long run_identity_tcp(const struct row *r) {
  char addr[64], buf[64];
  np_listener *l = tcp_listen(addr, sizeof(addr));
  np_stream *c, *s, *which;
  int err;

  ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, 0);
  which = (r->interest & 16) ? c : s;
  switch (r->interest & 15) {
  case 0:
    err = np_stream_peer_user(which, buf, sizeof(buf));
    break;
  case 1:
    err = np_stream_peer_sid(which, buf, sizeof(buf));
    break;
  default:
    err = np_stream_impersonate(which);
    break;
  }
  close_pair(l, c, s);
  return err;
}

/* np_stream_peer_user and np_stream_peer_sid with a NULL buffer (bit 0
 * of r->interest picks the SID) or a zero length (bit 1). */
static long run_identity_buf(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(0, 0, &c, &s);
  char buf[8];
  char *b = (r->interest & 2) ? buf : NULL;
  size_t len = (r->interest & 2) ? 0 : sizeof(buf);
  int err = (r->interest & 1) ? np_stream_peer_sid(s, b, len)
                              : np_stream_peer_user(s, b, len);

  close_pair(l, c, s);
  return err;
}

/* A refused interest change keeps the old token: the stream is still
 * reported as readable with TOK_S. */
static long run_stream_interest(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(0, 0, &c, &s);
  char b;
  int err = np_stream_set_interest(s, 99, r->interest);

  ck_assert_int_eq(np_write(c, "x", 1), 1);
  ck_assert_int_eq(read_wait(s, TOK_S, &b, 1), 1);
  close_pair(l, c, s);
  return err;
}

static long run_peer_null(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(0, 0, &c, &s);
  int err = np_stream_peer(s, NULL);

  NP__UNUSED(r);
  close_pair(l, c, s);
  return err;
}

static long run_error_none(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(0, 0, &c, &s);
  int err = np_stream_error(c);

  NP__UNUSED(r);
  close_pair(l, c, s);
  return err;
}

/* np_stream_peer on a TCP stream: r->interest 0 the accepted end, 1 the
 * connecting end. */
static long run_peer_tcp(const struct row *r) {
  char addr[64];
  np_listener *l = tcp_listen(addr, sizeof(addr));
  np_stream *c, *s;
  np_peer peer;
  int err;

  ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, 0);
  err = np_stream_peer(r->interest == 0 ? s : c, &peer);
  close_pair(l, c, s);
  return err;
}

/* ---- streams: reads and writes ------------------------------------------ */

/* np_read or np_write with a NULL buffer: r->interest bit 0 picks write,
 * bit 1 a zero length. */
static long run_rw_null_buf(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(0, 0, &c, &s);
  size_t len = (r->interest & 2) ? 0 : 1;
  long res =
      (r->interest & 1) ? np_write(c, NULL, len) : np_read(s, NULL, len);

  close_pair(l, c, s);
  return res;
}

/* A zero-length read in r->o.flags' mode; r->arg is what waits first
 * (NULL: nothing), and must be readable whole afterwards unless the read
 * took it. */
static long run_read_zero(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, 0, &c, &s);
  char buf[16];
  size_t n = r->arg != NULL ? strlen(r->arg) : 0;
  ptrdiff_t res;

  if (r->arg != NULL) {
    ck_assert_int_eq(np_write(c, r->arg, n), (ptrdiff_t)n);
    ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS) != 0);
  }
  res = np_read(s, buf, 0);
  /* A non-empty message or bytes are still there, whole. */
  if (n > 0)
    ck_assert_int_eq(read_wait(s, TOK_S, buf, sizeof(buf)), (ptrdiff_t)n);
  close_pair(l, c, s);
  return res;
}

/* A zero-length write in r->o.flags' mode: byte mode sends nothing,
 * message mode an empty message. */
static long run_write_zero(const struct row *r) {
  int message = (r->o.flags & NP_OPT_MESSAGE) != 0;
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, 0, &c, &s);
  char buf[16];
  ptrdiff_t res = np_write(c, "", 0);

  ck_assert_int_eq(np_write(c, "z", 1), 1);
  if (message)
    ck_assert_int_eq(read_wait(s, TOK_S, buf, sizeof(buf)), 0);
  ck_assert_int_eq(read_wait(s, TOK_S, buf, sizeof(buf)), 1);
  ck_assert_int_eq(buf[0], 'z');
  close_pair(l, c, s);
  return res;
}

/* A 64 MiB buffer, really allocated, for a 5-byte message or chunk. */
static long run_read_huge(const struct row *r) {
  enum { HUGE_LEN = 64 * 1024 * 1024 };
  char *buf = malloc(HUGE_LEN);
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, 0, &c, &s);
  ptrdiff_t res;

  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(np_write(c, "hello", 5), 5);
  res = read_wait(s, TOK_S, buf, HUGE_LEN);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  close_pair(l, c, s);
  free(buf);
  return res;
}

/* One write of r->interest KiB through a stream with r->o's flags and
 * write_limit.  How much of it a byte stream accepts depends on the OS
 * buffers, so a count strictly between 0 and len is R_PARTIAL. */
static long run_write_big(const struct row *r) {
  size_t len = (size_t)r->interest * 1024;
  unsigned char *buf = calloc(1, len);
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, r->o.write_limit, &c, &s);
  ptrdiff_t res;

  ck_assert_ptr_nonnull(buf);
  res = np_write(c, buf, len);
  if (res > 0 && (size_t)res < len)
    res = R_PARTIAL;
  close_pair(l, c, s);
  free(buf);
  return res;
}

/* Writes while the peer reads nothing: the OS buffers some, the stream
 * write_limit more, and then np_write refuses, within a bounded total. */
static long run_write_full(const struct row *r) {
  size_t len = 64 * 1024, total = 0;
  unsigned char *buf = calloc(1, len);
  np_stream *c, *s;
  np_listener *l = open_pair(0, 4096, &c, &s);
  ptrdiff_t res;

  NP__UNUSED(r);
  ck_assert_ptr_nonnull(buf);
  while ((res = np_write(c, buf, len)) > 0) {
    total += (size_t)res;
    ck_assert_msg(total < 64u * 1024 * 1024, "writes never blocked");
  }
  close_pair(l, c, s);
  free(buf);
  return res;
}

/* A message that does not fit the reader's buffer stays readable. */
static long run_read_msg_small(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(NP_OPT_MESSAGE, 0, &c, &s);
  char buf[8];
  ptrdiff_t res;

  NP__UNUSED(r);
  ck_assert_int_eq(np_write(c, "hello", 5), 5);
  res = read_wait(s, TOK_S, buf, 4);
  ck_assert_int_eq(read_wait(s, TOK_S, buf, 5), 5);
  close_pair(l, c, s);
  return res;
}

/* After np_shutdown: r->interest is the write length (0 or 1), or 2 for a
 * second np_shutdown. */
static long run_after_shutdown(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, 0, &c, &s);
  long res;

  ck_assert_int_eq(np_shutdown(c), 0);
  if (r->interest == 2)
    res = np_shutdown(c);
  else
    res = np_write(c, "x", r->interest);
  close_pair(l, c, s);
  return res;
}

/* The peer wrote "abc" and closed: the bytes, then NP_EOF, and NP_EOF
 * again. */
static long run_read_after_close(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, 0, &c, &s);
  char buf[8];
  ptrdiff_t res;

  ck_assert_int_eq(np_write(c, "abc", 3), 3);
  np_close(c);
  ck_assert_int_eq(read_wait(s, TOK_S, buf, sizeof(buf)), 3);
  res = read_wait(s, TOK_S, buf, sizeof(buf));
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), res);
  np_close(s);
  np_listener_close(l);
  return res;
}

/* The peer closed: writes fail within a bounded number of tries (the
 * first ones may still be accepted until the library learns of it). */
static long run_write_after_close(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(r->o.flags, 0, &c, &s);
  np_event ev[4];
  ptrdiff_t res = 0;
  int i;

  np_close(s);
  for (i = 0; i < 1000; i++) {
    res = np_write(c, "x", 1);
    if (res < 0 && res != NP_EAGAIN)
      break;
    ck_assert_int_ge(np_poll_wait(poll_, ev, 4, 10), 0);
  }
  /* Every later write fails the same way. */
  ck_assert_int_eq(np_write(c, "x", 1), res);
  np_close(c);
  np_listener_close(l);
  return res;
}

static long run_shutdown_after_close(const struct row *r) {
  np_stream *c, *s;
  np_listener *l = open_pair(0, 0, &c, &s);
  char buf[4];
  int res;

  NP__UNUSED(r);
  np_close(s);
  ck_assert_int_eq(read_wait(c, TOK_C, buf, sizeof(buf)), NP_EOF);
  res = np_shutdown(c);
  np_close(c);
  np_listener_close(l);
  return res;
}

/* ---- the table ------------------------------------------------------------
 */

/* One row per line or two, as a table reads best. */
/* clang-format off */
static const struct row rows[] = {
    /* The poller and the error table. */
    {"`out` NULL", "`np_poll_new(NULL)`", NP_EINVAL, NP_EINVAL,
     run_poll_new_null, NULL, NULL, {0}, 0},
    {"`poll` NULL", "`np_poll_wait`", NP_EINVAL, NP_EINVAL, run_wait_null_poll,
     NULL, NULL, {0}, 0},
    {"`events` NULL", "`np_poll_wait`", NP_EINVAL, NP_EINVAL,
     run_wait_null_events, NULL, NULL, {0}, 0},
    {"`max_events` 0", "`np_poll_wait`", NP_EINVAL, NP_EINVAL,
     run_wait_max_events, NULL, NULL, {0}, 0},
    {"`max_events` -1", "`np_poll_wait`", NP_EINVAL, NP_EINVAL,
     run_wait_max_events, NULL, NULL, {0}, (uint32_t)-1},
    {"`timeout_ms` `INT_MAX`, after `np_poll_wake`", "`np_poll_wait`", 0, 0,
     run_wait_woken, NULL, NULL, {0}, (uint32_t)INT_MAX},
    {"`timeout_ms` -5 (forever), after `np_poll_wake`", "`np_poll_wait`", 0, 0,
     run_wait_woken, NULL, NULL, {0}, (uint32_t)-5},
    {"`poll` NULL", "`np_poll_wake(NULL)`", NP_EINVAL, NP_EINVAL,
     run_wake_null, NULL, NULL, {0}, 0},
    {"`poll` NULL", "`np_poll_free(NULL)`", R_VOID, R_VOID, run_free_null,
     NULL, NULL, {0}, 0},
    {"unknown code: 0, 1, -31, 100, `INT_MIN`, `INT_MAX`", "`np_strerror`", 0,
     0, run_strerror_unknown, NULL, "\"unknown error\"", {0}, 0},
    {"unknown code: 0, 1, -31, 100, `INT_MIN`, `INT_MAX`", "`np_errname`", 0,
     0, run_errname_unknown, NULL, "\"NP_UNKNOWN\"", {0}, 0},

    /* Listeners: null pointers, accept, address, interest. */
    {"`poll` NULL", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_null_poll,
     NULL, NULL, {0}, 0},
    {"`address` NULL", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_null_address, NULL, NULL, {0}, 0},
    {"`out` NULL", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_null_out,
     NULL, NULL, {0}, 0},
    {"`l` NULL", "`np_accept`", NP_EINVAL, NP_EINVAL, run_accept_null_listener,
     NULL, NULL, {0}, 0},
    {"`out` NULL, a client waiting", "`np_accept`", NP_EINVAL, NP_EINVAL,
     run_accept_null_out, NULL, NULL, {0}, 0},
    {"`poll` NULL", "`np_accept_to`", NP_EINVAL, NP_EINVAL,
     run_accept_to_null, NULL, NULL, {0}, 0},
    {"`l` NULL", "`np_accept_to`", NP_EINVAL, NP_EINVAL, run_accept_to_null,
     NULL, NULL, {0}, 1},
    {"no client waiting", "`np_accept`", NP_EAGAIN, NP_EAGAIN, run_accept_none,
     NULL, NULL, {0}, 0},
    {"unknown interest bit 0x40", "`np_accept`", NP_EINVAL, NP_EINVAL,
     run_accept_interest, NULL, NULL, {0}, 0x40},
    {"interest `NP_EDGE|NP_ONESHOT`", "`np_accept`", NP_EINVAL, NP_EINVAL,
     run_accept_interest, NULL, NULL, {0}, NP_EDGE | NP_ONESHOT},
    {"interest `NP_HUP` (an event, not an interest)", "`np_accept`", NP_EINVAL,
     NP_EINVAL, run_accept_interest, NULL, NULL, {0}, NP_HUP},
    {"`l` NULL", "`np_listener_address`", NP_EINVAL, NP_EINVAL,
     run_address_null_listener, NULL, NULL, {0}, 0},
    {"`buf` NULL", "`np_listener_address`", NP_EINVAL, NP_EINVAL,
     run_address_len, NULL, NULL, {0}, 0},
    {"`len` 0", "`np_listener_address`", NP_EINVAL, NP_EINVAL, run_address_len,
     NULL, NULL, {0}, 1},
    {"`len` = address length (no room for the NUL)", "`np_listener_address`",
     NP_ENAMETOOLONG, NP_ENAMETOOLONG, run_address_len, NULL, NULL, {0}, 2},
    {"`len` = address length + 1 (control)", "`np_listener_address`", 0, 0,
     run_address_len, NULL, "the length", {0}, 3},
    {"`l` NULL", "`np_listener_set_interest`", NP_EINVAL, NP_EINVAL,
     run_listener_interest_null, NULL, NULL, {0}, NP_READABLE},
    {"interest `NP_WRITABLE`", "`np_listener_set_interest`", NP_EINVAL,
     NP_EINVAL, run_listener_interest, NULL, NULL, {0}, NP_WRITABLE},
    {"unknown interest bit 0x40", "`np_listener_set_interest`", NP_EINVAL,
     NP_EINVAL, run_listener_interest, NULL, NULL, {0}, 0x40},
    {"interest `NP_EDGE|NP_ONESHOT`", "`np_listener_set_interest`", NP_EINVAL,
     NP_EINVAL, run_listener_interest, NULL, NULL, {0},
     NP_READABLE | NP_EDGE | NP_ONESHOT},
    {"`l` NULL", "`np_listener_close(NULL)`", R_VOID, R_VOID,
     run_listener_close_null, NULL, NULL, {0}, 0},

    /* Addresses, through np_listen (np_connect parses them the same). */
    {"`\"\"` (empty)", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_addr,
     "", NULL, {0}, 0},
    {"`hello` (no kind)", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_addr,
     "hello", NULL, {0}, 0},
    {"`udp:1.2.3.4:5` (unknown kind)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "udp:1.2.3.4:5", NULL, {0}, 0},
    {"`PIPE:x` (kinds are lower case)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "PIPE:x", NULL, {0}, 0},
    {"` pipe:x` (leading space)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, " pipe:x", NULL, {0}, 0},
    {"`pipe:` (empty name)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "pipe:", NULL, {0}, 0},
    {"`pipe:` + 247 characters (POSIX: over `sun_path`)", "`np_listen`",
     NP_ENAMETOOLONG, 0, run_listen_addr, pipe_247_, NULL, {0}, 0},
    {"`pipe:` + 256 characters (Windows: `\\\\.\\pipe\\NAME` over 256)",
     "`np_listen`", NP_ENAMETOOLONG, NP_ENAMETOOLONG, run_listen_addr,
     pipe_256_, NULL, {0}, 0},
    {"`pipe:` + 257 characters", "`np_listen`", NP_ENAMETOOLONG,
     NP_ENAMETOOLONG, run_listen_addr, pipe_257_, NULL, {0}, 0},
    {"`pipe:a/b` (`/` in the name)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "pipe:a/b", NULL, {0}, 0},
    {"`pipe:a\\b` (`\\` in the name)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "pipe:a\\b", NULL, {0}, 0},
    {"`pipe:a` newline `b` (control character)", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_addr, "pipe:a\nb", NULL, {0}, 0},
    {"`pipe:a` tab `b` (control character)", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_addr, "pipe:a\tb", NULL, {0}, 0},
    {"`pipe:a` DEL (0x7f)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "pipe:a\x7f", NULL, {0}, 0},
    {"`pipe:.`", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_addr,
     "pipe:.", NULL, {0}, 0},
    {"`pipe:..`", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_addr,
     "pipe:..", NULL, {0}, 0},
    {"`pipe:` + bytes 0xff 0xfe (invalid UTF-8)", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_addr, "pipe:\xff\xfe", NULL, {0}, 0},
    {"`pipe:` + 0xc0 0xaf (overlong UTF-8 for `/`)", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_addr, "pipe:\xc0\xaf", NULL, {0}, 0},
    {"`pipe:` + 0xed 0xa0 0x80 (UTF-8 for a surrogate)", "`np_listen`",
     NP_EINVAL, NP_EINVAL, run_listen_addr, "pipe:\xed\xa0\x80", NULL, {0}, 0},
    {"`pipe:a` + 0xc3 (truncated UTF-8)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "pipe:a\xc3", NULL, {0}, 0},
    {"`pipe:npt-PID-é` (valid UTF-8, control)", "`np_listen`", 0, 0,
     run_listen_addr, utf8_ok_, NULL, {0}, 0},
    {"`pipe:npt-PID-` + U+1F600 (4-byte UTF-8, control)", "`np_listen`", 0, 0,
     run_listen_addr, utf8_4_, NULL, {0}, 0},
    {"`\\\\.\\pipe\\` (empty name)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "\\\\.\\pipe\\", NULL, {0}, 0},
    {"`\\\\.\\pipes\\x` (not `pipe`)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "\\\\.\\pipes\\x", NULL, {0}, 0},
    {"`\\\\\\pipe\\x` (empty host)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "\\\\\\pipe\\x", NULL, {0}, 0},
    {"`\\\\host\\pipe\\x` (another machine)", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_addr, "\\\\host\\pipe\\x", NULL, {0}, 0},
    {"`unix:` (empty path)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "unix:", NULL, {0}, 0},
    {"`unix:relative`", "`np_listen`", NP_EINVAL, NP_ENOTSUP, run_listen_addr,
     "unix:relative", NULL, {0}, 0},
    {"`unix:/` + 200 characters (over `sun_path`)", "`np_listen`",
     NP_ENAMETOOLONG, NP_ENOTSUP, run_listen_addr, unix_long_, NULL, {0}, 0},
    {"`tcp:`", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_addr, "tcp:",
     NULL, {0}, 0},
    {"`tcp:host` (no port)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:host", NULL, {0}, 0},
    {"`tcp:host:99999` (port over 65535)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:host:99999", NULL, {0}, 0},
    {"`tcp:127.0.0.1:` (empty port)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:127.0.0.1:", NULL, {0}, 0},
    {"`tcp:127.0.0.1:-1`", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:127.0.0.1:-1", NULL, {0}, 0},
    {"`tcp::80` (empty host)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp::80", NULL, {0}, 0},
    {"`tcp:a b:1` (space in the host)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:a b:1", NULL, {0}, 0},
    {"`tcp:[::1` (no `]`)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:[::1", NULL, {0}, 0},
    {"`tcp:[::1]x:1` (junk after `]`)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:[::1]x:1", NULL, {0}, 0},
    {"`tcp:[]:1` (empty brackets)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_addr, "tcp:[]:1", NULL, {0}, 0},
    {"`tcp:[127.0.0.1]:1` (brackets around IPv4)", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_addr, "tcp:[127.0.0.1]:1", NULL, {0}, 0},
    {"`tcp:` + 300-character host", "`np_listen`", NP_ENAMETOOLONG,
     NP_ENAMETOOLONG, run_listen_addr, tcp_long_, NULL, {0}, 0},
    {"`tcp:192.0.2.1:0` (address not on this machine)", "`np_listen`",
     NP_EADDRNOTAVAIL, NP_EADDRNOTAVAIL, run_listen_addr, "tcp:192.0.2.1:0",
     NULL, {0}, 0},
    {"`tcp:127.0.0.1:PORT`, port in use", "`np_listen`", NP_EADDRINUSE,
     NP_EADDRINUSE, run_listen_tcp_taken, NULL, NULL, {0}, 0},
    {"`pipe:NAME`, name in use by a live listener", "`np_listen`",
     NP_EADDRINUSE, NP_EADDRINUSE, run_listen_taken, NULL, NULL, {0}, 0},
    {"`\"\"` (empty)", "`np_connect`", NP_EINVAL, NP_EINVAL, run_connect_addr,
     "", NULL, {0}, 0},
    {"`pipe:a/b`", "`np_connect`", NP_EINVAL, NP_EINVAL, run_connect_addr,
     "pipe:a/b", NULL, {0}, 0},
    {"`pipe:` + 257 characters", "`np_connect`", NP_ENAMETOOLONG,
     NP_ENAMETOOLONG, run_connect_addr, pipe_257_, NULL, {0}, 0},
    {"`unix:relative`", "`np_connect`", NP_EINVAL, NP_ENOTSUP,
     run_connect_addr, "unix:relative", NULL, {0}, 0},
    {"`\\\\host\\pipe\\x` (another machine)",
     "`np_connect`, wait, `np_stream_error`", NP_ENOTSUP, NP_ENOENT,
     run_connect_remote, "\\\\nohost\\pipe\\x", NULL, {0}, 0},
    {"`pipe:NAME`, nobody listens", "`np_connect`", NP_ENOENT, NP_ENOENT,
     run_connect_addr, absent_, NULL, {0}, 0},
    {"`tcp:127.0.0.1:PORT`, nobody listens",
     "`np_connect`, wait, " "`np_stream_error`", NP_ECONNREFUSED,
     NP_ECONNREFUSED, run_connect_tcp_refused, NULL, NULL, {0}, 0},

    /* Options: np_listen (each failure leaves the name free). */
    {"`flags` with unknown bit 0x40000000", "`np_listen`", NP_EINVAL,
     NP_EINVAL, run_listen_opts, NULL, NULL, {.flags = 0x40000000u}, 0},
    {"`backlog` -1", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_opts,
     NULL, NULL, {.backlog = -1}, 0},
    {"`backlog` `INT_MIN`", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_opts, NULL, NULL, {.backlog = INT_MIN}, 0},
    {"`backlog` 256", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_opts,
     NULL, NULL, {.backlog = 256}, 0},
    {"`backlog` `INT_MAX`", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_opts, NULL, NULL, {.backlog = INT_MAX}, 0},
    {"`backlog` 255 (the maximum, control)", "`np_listen`", 0, 0,
     run_listen_opts, NULL, NULL, {.backlog = 255}, 0},
    {"`mode` 01000 (sticky bit)", "`np_listen`", NP_EINVAL, NP_EINVAL,
     run_listen_opts, NULL, NULL, {.mode = 01000}, 0},
    {"`mode` 0xffffffff", "`np_listen`", NP_EINVAL, NP_EINVAL, run_listen_opts,
     NULL, NULL, {.mode = 0xffffffffu}, 0},
    {"`mode` 0777 (allowed; ignored on Windows)", "`np_listen`", 0, 0,
     run_listen_opts, NULL, NULL, {.mode = 0777}, 0},
    {"`sddl` granting Everyone (`D:(A;;GA;;;WD)`)", "`np_listen`", 0,
     NP_EINVAL, run_listen_opts, NULL, NULL, {.sddl = "D:(A;;GA;;;WD)"}, 0},
    {"`sddl` granting Anonymous write (`D:(A;;GW;;;AN)(A;;GA;;;OW)`)",
     "`np_listen`", 0, NP_EINVAL, run_listen_opts, NULL, NULL,
     {.sddl = "D:(A;;GW;;;AN)(A;;GA;;;OW)"}, 0},
    {"`sddl` granting Network read/write (`D:(A;;GRGW;;;NU)(A;;GA;;;OW)`)",
     "`np_listen`", 0, NP_EINVAL, run_listen_opts, NULL, NULL,
     {.sddl = "D:(A;;GRGW;;;NU)(A;;GA;;;OW)"}, 0},
    {"`sddl` with a null DACL (`D:NO_ACCESS_CONTROL`)", "`np_listen`", 0,
     NP_EINVAL, run_listen_opts, NULL, NULL, {.sddl = "D:NO_ACCESS_CONTROL"},
     0},
    {"`sddl` without a DACL (`O:OW`)", "`np_listen`", 0, NP_EINVAL,
     run_listen_opts, NULL, NULL, {.sddl = "O:OW"}, 0},
    {"`sddl` not SDDL (`hello`)", "`np_listen`", 0, NP_EINVAL, run_listen_opts,
     NULL, NULL, {.sddl = "hello"}, 0},
    {"`sddl` `\"\"` (empty)", "`np_listen`", 0, NP_EINVAL, run_listen_opts,
     NULL, NULL, {.sddl = ""}, 0},
    {"`NP_OPT_ALLOW_UID` with `allow_uid` 0 (root)", "`np_listen`", 0, 0,
     run_listen_opts, NULL, NULL, {.flags = NP_OPT_ALLOW_UID}, 0},
    {"`NP_OPT_ALLOW_REMOTE` (POSIX: ignored)", "`np_listen`", 0, 0,
     run_listen_opts, NULL, NULL, {.flags = NP_OPT_ALLOW_REMOTE}, 0},
    {"`NP_OPT_WAIT_BUSY|NP_OPT_WAIT_ABSENT` (ignored by `np_listen`)",
     "`np_listen`", 0, 0, run_listen_opts, NULL, NULL,
     {.flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT}, 0},

    /* Options and interest: np_connect. */
    {"`flags` with unknown bit 0x40000000", "`np_connect`", NP_EINVAL,
     NP_EINVAL, run_connect_opts_live, NULL, NULL, {.flags = 0x40000000u}, 0},
    {"`backlog` -1", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_opts_live, NULL, NULL, {.backlog = -1}, 0},
    {"`mode` 01000", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_opts_live, NULL, NULL, {.mode = 01000}, 0},
    {"`timeout_ms` -1 without a wait flag (absent name)", "`np_connect`",
     NP_ENOENT, NP_ENOENT, run_connect_opts_absent, NULL, NULL,
     {.timeout_ms = -1}, 0},
    {"`timeout_ms` 0 with `NP_OPT_WAIT_ABSENT` (absent name)", "`np_connect`",
     NP_ETIMEDOUT, NP_ETIMEDOUT, run_connect_opts_absent, NULL, NULL,
     {.flags = NP_OPT_WAIT_ABSENT}, 0},
    {"`timeout_ms` `INT_MIN` with `NP_OPT_WAIT_ABSENT`, server comes later",
     "`np_connect`", 0, 0, run_connect_wait_forever, NULL, NULL,
     {.flags = NP_OPT_WAIT_ABSENT, .timeout_ms = INT_MIN}, 0},
    {"`NP_OPT_MESSAGE` client, byte-mode server", "`np_connect`", NP_EINVAL,
     NP_EINVAL, run_connect_message_to_byte, NULL, NULL,
     {.flags = NP_OPT_MESSAGE}, 0},
    {"byte-mode client, `NP_OPT_MESSAGE` server", "`np_connect`", NP_EINVAL, 0,
     run_connect_to_message_server, NULL, NULL, {0}, 0},
    {"unknown interest bit 0x40", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_opts_live, NULL, NULL, {0}, 0x40},
    {"interest `NP_EDGE|NP_ONESHOT`", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_opts_live, NULL, NULL, {0},
     NP_READABLE | NP_EDGE | NP_ONESHOT},
    {"interest `NP_HUP|NP_ERR`", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_opts_live, NULL, NULL, {0}, NP_HUP | NP_ERR},
    {"`poll` NULL", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_null_poll, NULL, NULL, {0}, 0},
    {"`address` NULL", "`np_connect`", NP_EINVAL, NP_EINVAL,
     run_connect_null_address, NULL, NULL, {0}, 0},
    {"`out` NULL", "`np_connect`", NP_EINVAL, NP_EINVAL, run_connect_null_out,
     NULL, NULL, {0}, 0},

    /* Streams: null pointers and interest. */
    {"`s` NULL", "`np_read`", NP_EINVAL, NP_EINVAL, run_stream_null, NULL,
     NULL, {0}, 0},
    {"`s` NULL", "`np_write`", NP_EINVAL, NP_EINVAL, run_stream_null, NULL,
     NULL, {0}, 1},
    {"`s` NULL", "`np_shutdown`", NP_EINVAL, NP_EINVAL, run_stream_null, NULL,
     NULL, {0}, 2},
    {"`s` NULL", "`np_stream_set_interest`", NP_EINVAL, NP_EINVAL,
     run_stream_null, NULL, NULL, {0}, 3},
    {"`s` NULL", "`np_stream_error`", NP_EINVAL, NP_EINVAL, run_stream_null,
     NULL, NULL, {0}, 4},
    {"`s` NULL", "`np_stream_peer`", NP_EINVAL, NP_EINVAL, run_stream_null,
     NULL, NULL, {0}, 5},
    {"`s` NULL", "`np_close(NULL)`", R_VOID, R_VOID, run_stream_null, NULL,
     NULL, {0}, 6},
    {"`peer` NULL", "`np_stream_peer`", NP_EINVAL, NP_EINVAL, run_peer_null,
     NULL, NULL, {0}, 0},
    {"`s` NULL", "`np_stream_peer_user`", NP_EINVAL, NP_EINVAL,
     run_stream_null, NULL, NULL, {0}, 7},
    {"`s` NULL", "`np_stream_peer_sid`", NP_EINVAL, NP_EINVAL,
     run_stream_null, NULL, NULL, {0}, 8},
    {"`s` NULL", "`np_stream_impersonate`", NP_EINVAL, NP_EINVAL,
     run_stream_null, NULL, NULL, {0}, 9},
    {"`buf` NULL", "`np_stream_peer_user`", NP_EINVAL, NP_EINVAL,
     run_identity_buf, NULL, NULL, {0}, 0},
    {"`len` 0", "`np_stream_peer_user`", NP_EINVAL, NP_EINVAL,
     run_identity_buf, NULL, NULL, {0}, 2},
    {"`buf` NULL", "`np_stream_peer_sid`", NP_EINVAL, NP_EINVAL,
     run_identity_buf, NULL, NULL, {0}, 1},
    {"`len` 0", "`np_stream_peer_sid`", NP_EINVAL, NP_EINVAL,
     run_identity_buf, NULL, NULL, {0}, 3},
    {"TCP stream (accepted end)", "`np_stream_peer_user`", NP_ENOTSUP,
     NP_ENOTSUP, run_identity_tcp, NULL, NULL, {0}, 0},
    {"TCP stream (connecting end)", "`np_stream_peer_user`", NP_ENOTSUP,
     NP_ENOTSUP, run_identity_tcp, NULL, NULL, {0}, 16},
    {"TCP stream", "`np_stream_peer_sid`", NP_ENOTSUP, NP_ENOTSUP,
     run_identity_tcp, NULL, NULL, {0}, 1},
    {"TCP stream", "`np_stream_impersonate`", NP_ENOTSUP, NP_ENOTSUP,
     run_identity_tcp, NULL, NULL, {0}, 2},
    {"TCP stream (accepted end)", "`np_stream_peer`", NP_ENOTSUP, NP_ENOTSUP,
     run_peer_tcp, NULL, NULL, {0}, 0},
    {"TCP stream (connecting end)", "`np_stream_peer`", NP_ENOTSUP, NP_ENOTSUP,
     run_peer_tcp, NULL, NULL, {0}, 1},
    {"no pending error", "`np_stream_error`", 0, 0, run_error_none, NULL, NULL,
     {0}, 0},
    {"unknown interest bit 0x40", "`np_stream_set_interest`", NP_EINVAL,
     NP_EINVAL, run_stream_interest, NULL, NULL, {0}, 0x40},
    {"interest `NP_EDGE|NP_ONESHOT`", "`np_stream_set_interest`", NP_EINVAL,
     NP_EINVAL, run_stream_interest, NULL, NULL, {0},
     NP_READABLE | NP_EDGE | NP_ONESHOT},
    {"interest `NP_ERR`", "`np_stream_set_interest`", NP_EINVAL, NP_EINVAL,
     run_stream_interest, NULL, NULL, {0}, NP_ERR},

    /* Streams: reads and writes. */
    {"`buf` NULL, `len` 1", "`np_read`", NP_EINVAL, NP_EINVAL, run_rw_null_buf,
     NULL, NULL, {0}, 0},
    {"`buf` NULL, `len` 1", "`np_write`", NP_EINVAL, NP_EINVAL,
     run_rw_null_buf, NULL, NULL, {0}, 1},
    {"`buf` NULL, `len` 0", "`np_read`", 0, 0, run_rw_null_buf, NULL, NULL,
     {0}, 2},
    {"`buf` NULL, `len` 0", "`np_write`", 0, 0, run_rw_null_buf, NULL, NULL,
     {0}, 3},
    {"`len` 0, byte mode, nothing waiting", "`np_read`", 0, 0, run_read_zero,
     NULL, NULL, {0}, 0},
    {"`len` 0, byte mode, 5 bytes waiting (kept)", "`np_read`", 0, 0,
     run_read_zero, "hello", NULL, {0}, 0},
    {"`len` 0, message mode, nothing waiting", "`np_read`", NP_EAGAIN,
     NP_EAGAIN, run_read_zero, NULL, NULL, {.flags = NP_OPT_MESSAGE}, 0},
    {"`len` 0, message mode, 5-byte message waiting (kept)", "`np_read`",
     NP_EMSGSIZE, NP_EMSGSIZE, run_read_zero, "hello", NULL,
     {.flags = NP_OPT_MESSAGE}, 0},
    {"`len` 0, byte mode (sends nothing)", "`np_write`", 0, 0, run_write_zero,
     NULL, NULL, {0}, 0},
    {"`len` 0, message mode (sends an empty message)", "`np_write`", 0, 0,
     run_write_zero, NULL, NULL, {.flags = NP_OPT_MESSAGE}, 0},
    {"`len` 64 MiB (real buffer), 5 bytes waiting, byte mode", "`np_read`", 5,
     5, run_read_huge, NULL, NULL, {0}, 0},
    {"`len` 64 MiB (real buffer), 5-byte message, message mode", "`np_read`",
     5, 5, run_read_huge, NULL, NULL, {.flags = NP_OPT_MESSAGE}, 0},
    {"`len` 4 smaller than the 5-byte message (it stays readable)",
     "`np_read`", NP_EMSGSIZE, NP_EMSGSIZE, run_read_msg_small, NULL, NULL,
     {0}, 0},
    {"1 MiB with `write_limit` 4096, byte mode", "`np_write`", R_PARTIAL,
     R_PARTIAL, run_write_big, NULL, NULL, {.write_limit = 4096}, 1024},
    {"4 MiB with `write_limit` 0 (1 MiB), byte mode", "`np_write`", R_PARTIAL,
     R_PARTIAL, run_write_big, NULL, NULL, {0}, 4096},
    {"64 KiB writes, peer not reading, `write_limit` 4096", "`np_write`",
     NP_EAGAIN, NP_EAGAIN, run_write_full, NULL, NULL, {0}, 0},
    {"8 KiB message with `write_limit` 4096",
     "`np_write`", NP_EMSGSIZE, NP_EMSGSIZE, run_write_big, NULL, NULL,
     {.flags = NP_OPT_MESSAGE, .write_limit = 4096}, 8},
    {"64 MiB message (default `write_limit` 1 MiB)", "`np_write`", NP_EMSGSIZE,
     NP_EMSGSIZE, run_write_big, NULL, NULL, {.flags = NP_OPT_MESSAGE},
     64 * 1024},
    {"1 byte after `np_shutdown`", "`np_write`", NP_ESHUTDOWN, NP_ESHUTDOWN,
     run_after_shutdown, NULL, NULL, {0}, 1},
    {"0 bytes after `np_shutdown`", "`np_write`", NP_ESHUTDOWN, NP_ESHUTDOWN,
     run_after_shutdown, NULL, NULL, {0}, 0},
    {"1 byte after `np_shutdown`, message mode", "`np_write`", NP_ESHUTDOWN,
     NP_ESHUTDOWN, run_after_shutdown, NULL, NULL, {.flags = NP_OPT_MESSAGE},
     1},
    {"a second `np_shutdown`", "`np_shutdown`", 0, 0, run_after_shutdown, NULL,
     NULL, {0}, 2},
    {"peer closed, after its bytes (and again)", "`np_read`", NP_EOF, NP_EOF,
     run_read_after_close, NULL, NULL, {0}, 0},
    {"peer closed, after its messages (and again)", "`np_read`", NP_EOF,
     NP_EOF, run_read_after_close, NULL, NULL, {.flags = NP_OPT_MESSAGE}, 0},
    {"peer closed (within 1000 tries, then always)", "`np_write`", NP_EPIPE,
     NP_EPIPE, run_write_after_close, NULL, NULL, {0}, 0},
    {"peer closed, message mode (within 1000 tries, then always)",
     "`np_write`", NP_EPIPE, NP_EPIPE, run_write_after_close, NULL, NULL,
     {.flags = NP_OPT_MESSAGE}, 0},
    {"peer closed", "`np_shutdown`", 0, 0, run_shutdown_after_close, NULL,
     NULL, {0}, 0},
};
/* clang-format on */

/* The row's result for this backend. */
static long backend_want(const struct row *r) {
#ifdef _WIN32
  return r->win;
#else
  return r->posix;
#endif
}

/* Rows whose Windows result Wine does not reproduce: under Wine the row
 * asserts what Wine does, so that a Wine that catches up is noticed. */
static const struct wine_gap {
  long (*run)(const struct row *r);
  long got;
  const char *why;
} wine_gaps[] = {
    {run_listen_taken, 0,
     "Wine 8 ignores `FILE_FLAG_FIRST_PIPE_INSTANCE`: a second listener "
     "is created"},
};

static const struct wine_gap *wine_gap(const struct row *r) {
  size_t i;

  if (!npt_under_wine())
    return NULL;
  for (i = 0; i < NP__ARRAY_SIZE(wine_gaps); i++)
    if (wine_gaps[i].run == r->run)
      return &wine_gaps[i];
  return NULL;
}

/* The result this run must give. */
static long expected(const struct row *r) {
  const struct wine_gap *g = wine_gap(r);

  return g != NULL ? g->got : backend_want(r);
}

/* The result as the table shows it. */
static const char *show(const struct row *r, long v, char *buf, size_t len) {
  if (r->shown != NULL && v == 0)
    return r->shown;
  if (v == R_VOID)
    return "no-op";
  if (v == R_PARTIAL)
    return "a part: 0 < n < len";
  if (v == R_SKIP)
    return "not tried";
  if (v < 0 && strcmp(np_errname((int)v), "NP_UNKNOWN") != 0)
    snprintf(buf, len, "`%s`", np_errname((int)v));
  else
    snprintf(buf, len, "%ld", v);
  return buf;
}

START_TEST(test_badinput_row) {
  const struct row *r = &rows[_i];
  long want = expected(r), got;
  char a[32], b[32];

  if (want == R_SKIP)
    return;
  got = r->run(r);
  ck_assert_msg(got == want, "row %d (%s, %s): got %s, want %s", _i, r->input,
                r->call, show(r, got, a, sizeof(a)),
                show(r, want, b, sizeof(b)));
}
END_TEST

/* Markdown needs '|' escaped, even inside code spans. */
static void put_cell(const char *text) {
  putchar(' ');
  for (; *text != '\0'; text++) {
    if (*text == '|')
      putchar('\\');
    putchar(*text);
  }
  fputs(" |", stdout);
}

/* Prints one Markdown row per table row, in order; Check reports the
 * loop's results in the same order.  A row that failed says so. */
static void print_table(SRunner *sr) {
  TestResult **res = srunner_results(sr);
  int n = srunner_ntests_run(sr), i;
  char buf[64];

  printf("<!-- bad-input table: backend=%s rows=%d -->\n", npt_backend(),
         (int)NP__ARRAY_SIZE(rows));
  for (i = 0; i < (int)NP__ARRAY_SIZE(rows); i++) {
    const struct row *r = &rows[i];
    const struct wine_gap *g = wine_gap(r);
    char cell[256];

    fputs("|", stdout);
    put_cell(r->input);
    put_cell(r->call);
    if (i < n && tr_rtype(res[i]) != CK_PASS) {
      snprintf(cell, sizeof(cell), "**FAILED**: %s", tr_msg(res[i]));
    } else if (g != NULL) {
      /* The Windows result, and what Wine gives instead. */
      snprintf(cell, sizeof(cell),
               "%s; Wine: ", show(r, backend_want(r), buf, sizeof(buf)));
      snprintf(cell + strlen(cell), sizeof(cell) - strlen(cell), "%s (%s)",
               show(r, g->got, buf, sizeof(buf)), g->why);
    } else {
      snprintf(cell, sizeof(cell), "%s",
               show(r, backend_want(r), buf, sizeof(buf)));
    }
    put_cell(cell);
    putchar('\n');
  }
  printf("<!-- end of bad-input table -->\n");
  free(res);
}

static void fill_addresses(void) {
  char pid[32];
  size_t n;

  snprintf(pid, sizeof(pid), "%lu", (unsigned long)npt_self_pid());
  /* Unique per process, padded with 'a' to the length. */
  n = (size_t)snprintf(pipe_256_, sizeof(pipe_256_), "pipe:npt-%s-", pid);
  memset(pipe_256_ + n, 'a', 5 + 256 - n);
  pipe_256_[5 + 256] = '\0';
  memcpy(pipe_247_, pipe_256_, 5 + 247);
  pipe_247_[5 + 247] = '\0';
  memcpy(pipe_257_, pipe_256_, 5 + 256);
  strcpy(pipe_257_ + 5 + 256, "a");
  strcpy(unix_long_, "unix:/");
  memset(unix_long_ + 6, 'u', 200);
  strcpy(tcp_long_, "tcp:");
  memset(tcp_long_ + 4, 'h', 300);
  strcpy(tcp_long_ + 304, ":1");
  snprintf(absent_, sizeof(absent_), "pipe:npt-%s-absent", pid);
  snprintf(utf8_ok_, sizeof(utf8_ok_), "pipe:npt-%s-\xc3\xa9", pid);
  snprintf(utf8_4_, sizeof(utf8_4_), "pipe:npt-%s-\xf0\x9f\x98\x80", pid);
}

int main(void) {
  Suite *suite = suite_create("badinput");
  TCase *tc = npt_tcase(suite, "rows");
  SRunner *sr;
  int failed;

  fill_addresses();
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_badinput_row, 0, (int)NP__ARRAY_SIZE(rows));
  npt_use_private_dir();
#ifdef _WIN32
  /* msvcrt's text mode would end the table's lines in \r\n. */
  _setmode(_fileno(stdout), _O_BINARY);
#endif
  sr = srunner_create(suite);
  printf("npipe tests: backend=%s fork=%s wine=%s\n", npt_backend(),
         srunner_fork_status(sr) == CK_FORK ? "yes" : "no",
         npt_under_wine() ? "yes" : "no");
  fflush(stdout);
  srunner_run_all(sr, CK_ENV);
  fflush(stdout);
  print_table(sr);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
