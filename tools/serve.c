/*
 * The server loop: accept clients on one listener and run one relay per
 * client, to the tool's standard input and output, back to the client
 * (echo), to a command, or to a new connection (forward).  Used by
 * pipe-server and by pipe-client --listen.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static int session_cap(const struct server *sv) {
  return sv->cfg->mode == TL_SERVE_STDIO ? 1 : sv->cfg->max_clients;
}

/* Stops reporting the listener while the server is full: clients wait in
 * the backlog. */
static void pause_listener(struct server *sv, int pause) {
  if (sv->listener == NULL || sv->paused == pause)
    return;
  sv->paused = pause;
  np_listener_set_interest(sv->listener, LISTENER_TOKEN,
                           pause ? 0 : NP_READABLE);
}

uint64_t tl_serve_token(const struct server *sv, struct session *s, int i) {
  if (sv->cfg->threads > 1)
    return ((uint64_t)s->gen << 32) | ((uint64_t)s->index << 1) | (unsigned)i;
  return tl_end_token(&s->relay.ends[i]);
}

uint32_t tl_serve_interest(const struct server *sv) {
  return sv->cfg->threads > 1 ? 0 : TL_STREAM_INTEREST;
}

/* ASCII case-insensitive equality: Windows account names ignore case. */
static int same_name(const char *a, const char *b, int fold) {
  for (; *a != '\0' && *b != '\0'; a++, b++) {
    int x = (unsigned char)*a, y = (unsigned char)*b;

    if (fold && x >= 'A' && x <= 'Z')
      x += 'a' - 'A';
    if (fold && y >= 'A' && y <= 'Z')
      y += 'a' - 'A';
    if (x != y)
      return 0;
  }
  return *a == *b;
}

/* --allow-user NAME matches the account in full, or (Windows) its name
 * without the domain. */
static int allowed(const struct tl_server_config *cfg, const char *user) {
  const char *bare = strrchr(user, '\\');
  int i;

  for (i = 0; i < cfg->nallow_users; i++)
    if (same_name(cfg->allow_users[i], user, tl_sys_windows) ||
        (tl_sys_windows && bare != NULL &&
         same_name(cfg->allow_users[i], bare + 1, 1)))
      return 1;
  return 0;
}

int tl_serve_admit(const struct server *sv, struct session *s,
                   np_stream *client) {
  const struct tl_server_config *cfg = sv->cfg;
  char user[256];
  np_peer peer;
  int named, known;

  /* Naming the account may ask the user database: only when asked to. */
  if (cfg->nallow_users == 0 && !tl_verbose)
    return 0;
  named = np_stream_peer_user(client, user, sizeof(user)) >= 0;
  known = np_stream_peer(client, &peer) == 0;
  if (cfg->nallow_users > 0 && !named) {
    tl_error("%s: refused: its account cannot be read (--allow-user)",
             s->name);
    return -1;
  }
  if (cfg->nallow_users > 0 && !allowed(cfg, user)) {
    tl_error("%s: refused: user %s is not allowed (--allow-user)", s->name,
             user);
    return -1;
  }
  if (!tl_verbose)
    return 0;
  if (known && named)
    tl_note("%s: connected, pid %lld, user %s", s->name, (long long)peer.pid,
            user);
  else if (known)
    tl_note("%s: connected, pid %lld", s->name, (long long)peer.pid);
  else
    tl_note("%s: connected", s->name);
  return 0;
}

int tl_serve_setup_peer(struct server *sv, struct session *s) {
  const struct tl_server_config *cfg = sv->cfg;
  struct tl_relay *r = &s->relay;
  struct tl_end *c = &r->ends[0], *p = &r->ends[1];
  int err;

  if (cfg->mode == TL_SERVE_ECHO) {
    r->ndirs = 1;
    r->dirs[0].from = r->dirs[0].to = c;
    r->dirs[0].propagate = 1;
    return 0;
  }
  r->ndirs = 2;
  r->dirs[0].from = r->dirs[1].to = c;
  r->dirs[0].to = r->dirs[1].from = p;
  r->dirs[0].propagate = r->dirs[1].propagate = 1;
  p->owned = 1;
  if (cfg->mode == TL_SERVE_STDIO) {
    p->chan = sv->stdio;
    p->owned = 0;
    p->in_name = "standard input";
    p->out_name = "standard output";
    /* Standard output stays open for the next client. */
    r->dirs[0].propagate = 0;
    return 0;
  }
  if (cfg->mode == TL_SERVE_EXEC) {
    tl_handle to, from;
    tl_proc proc;

    p->in_name = p->out_name = cfg->exec_command;
    err = tl_sys_spawn(cfg->exec_command, &to, &from, &proc);
    if (err == 0 &&
        (err = tl_chan_new(sv->poll, from, to, 1, proc, &p->chan)) != 0)
      tl_error("%s: %s", cfg->exec_command, np_strerror(err));
    return err == 0 ? 0 : TL_EXIT_RUNTIME;
  }
  p->in_name = p->out_name = cfg->forward_address;
  err =
      np_connect(sv->poll, cfg->forward_address, &cfg->forward_opts,
                 tl_serve_token(sv, s, 1), tl_serve_interest(sv), &p->stream);
  if (err != 0)
    return tl_address_error(cfg->forward_address, err, TL_EXIT_CONNECT);
  return 0;
}

static void add_session(struct server *sv, struct session *s) {
  s->next = sv->sessions;
  sv->sessions = s;
  sv->count++;
}

/* Accepts one client.  Returns 0 to go on, or NP_EAGAIN when none waits
 * (or another NP_E*). */
static int accept_one(struct server *sv) {
  struct session *s = calloc(1, sizeof(*s));
  struct tl_end *c;
  int err;

  if (s == NULL)
    return NP_ENOMEM;
  tl_relay_init(&s->relay);
  c = &s->relay.ends[0];
  err =
      np_accept(sv->listener, tl_end_token(c), TL_STREAM_INTEREST, &c->stream);
  if (err != 0) {
    free(s);
    return err;
  }
  snprintf(s->name, sizeof(s->name), "client %u", ++sv->accepted);
  c->owned = 1;
  c->in_name = c->out_name = s->name;
  if (tl_serve_admit(sv, s, c->stream) != 0) {
    tl_relay_close(&s->relay);
    free(s);
    return 0;
  }
  err = tl_serve_setup_peer(sv, s);
  if (err == 0 && tl_relay_start(&s->relay) != 0) {
    tl_error("%s: %s", s->name, np_strerror(NP_ENOMEM));
    err = TL_EXIT_RUNTIME;
  }
  if (sv->cfg->once) {
    /* Serve this client only: later ones find no server. */
    np_listener_close(sv->listener);
    sv->listener = NULL;
    sv->status = err;
  }
  if (err != 0) {
    tl_relay_close(&s->relay);
    free(s);
    return 0;
  }
  add_session(sv, s);
  return 0;
}

static void accept_all(struct server *sv) {
  while (sv->listener != NULL && !sv->paused) {
    int err;

    if (session_cap(sv) > 0 && sv->count >= session_cap(sv)) {
      pause_listener(sv, 1);
      return;
    }
    err = accept_one(sv);
    if (err == NP_EAGAIN)
      return;
    if (err != 0) {
      /* Out of memory or descriptors: the client waits; the next event
       * tries again. */
      tl_error("%s: %s", sv->cfg->listen_address, np_strerror(err));
      return;
    }
  }
}

/* Errors on the client's side are its own business (notes); the server's
 * side is reported. */
void tl_serve_report_end(struct server *sv, struct session *s) {
  struct tl_relay *r = &s->relay;
  uint64_t out = r->dirs[r->ndirs - 1].bytes;

  if (r->error != 0) {
    if (r->error_name == s->name)
      tl_note("%s: %s", s->name, np_strerror(r->error));
    else
      tl_error("%s: %s", r->error_name, np_strerror(r->error));
  }
  if (sv->cfg->stats)
    tl_report_stats(s->name, r->dirs[0].bytes, out,
                    tl_sys_now_ms() - r->started_ms);
  tl_note("%s: closed", s->name);
  if (sv->cfg->once && sv->status == 0 && r->error != 0)
    sv->status = r->ends[1].failed && r->error_name != s->name
                     ? TL_EXIT_CONNECT
                     : TL_EXIT_RUNTIME;
}

static void end_session(struct server *sv, struct session **link) {
  struct session *s = *link;

  tl_serve_report_end(sv, s);
  if (sv->cfg->once)
    tl_relay_linger(&s->relay, sv->poll);
  *link = s->next;
  tl_relay_close(&s->relay);
  free(s);
  sv->count--;
  pause_listener(sv, 0);
}

/* Pumps the sessions that had events; those with a channel every time,
 * since a channel's wake-up carries no token. */
static void pump_sessions(struct server *sv) {
  struct session **link = &sv->sessions;

  while (*link != NULL) {
    struct tl_relay *r = &(*link)->relay;

    if ((r->dirty || r->ends[1].chan != NULL) && tl_relay_pump(r))
      end_session(sv, link);
    else
      link = &(*link)->next;
  }
}

static int dispatch(struct server *sv) {
  np_event ev[64];
  int n = np_poll_wait(sv->poll, ev, 64, -1), i;

  if (n < 0) {
    tl_error("poll: %s", np_strerror(n));
    return n;
  }
  for (i = 0; i < n; i++) {
    if (ev[i].token == LISTENER_TOKEN)
      accept_all(sv);
    else
      tl_relay_event(tl_token_end(ev[i].token), ev[i].events);
  }
  pump_sessions(sv);
  return 0;
}

/* Lets standard output take what the clients sent before the process
 * exits. */
static void flush_stdio(struct server *sv) {
  while (tl_chan_shutdown(sv->stdio) == NP_EAGAIN && !tl_sys_signalled()) {
    np_event ev[8];

    if (np_poll_wait(sv->poll, ev, 8, 1000) < 0)
      return;
  }
}

static int start(struct server *sv) {
  const struct tl_server_config *cfg = sv->cfg;
  char address[512];
  int err;

  err = np_poll_new(&sv->poll);
  if (err == 0)
    err = np_listen(sv->poll, cfg->listen_address, &cfg->listen_opts,
                    LISTENER_TOKEN, &sv->listener);
  if (err != 0)
    return tl_address_error(cfg->listen_address, err, TL_EXIT_RUNTIME);
  if (cfg->mode == TL_SERVE_STDIO &&
      (err = tl_chan_new(sv->poll, tl_sys_stdin(), tl_sys_stdout(), 1, 0,
                         &sv->stdio)) != 0) {
    tl_error("standard input: %s", np_strerror(err));
    return TL_EXIT_RUNTIME;
  }
  if (tl_verbose &&
      np_listener_address(sv->listener, address, sizeof(address)) > 0)
    tl_note("listening on %s", address);
  tl_sys_catch_signals(sv->poll);
  return 0;
}

static void stop(struct server *sv) {
  while (sv->sessions != NULL) {
    struct session *s = sv->sessions;

    sv->sessions = s->next;
    tl_relay_close(&s->relay);
    free(s);
  }
  np_listener_close(sv->listener);
  tl_chan_close(sv->stdio);
  if (!tl_sys_signalled())
    (void)np_poll_flush(sv->poll, TL_FLUSH_MS);
  tl_sys_catch_signals(NULL);
  np_poll_free(sv->poll);
}

/* The loop on one thread. */
static int run(struct server *sv) {
  int status = 0;

  while (status == 0 && !tl_sys_signalled()) {
    if (sv->cfg->once && sv->listener == NULL && sv->count == 0)
      return sv->status;
    if (dispatch(sv) != 0)
      status = TL_EXIT_RUNTIME;
  }
  return status;
}

int tl_serve(const struct tl_server_config *cfg) {
  struct server sv;
  int status;

  memset(&sv, 0, sizeof(sv));
  sv.cfg = cfg;
  status = start(&sv);
  if (status == 0)
    status = cfg->threads > 1 ? tl_serve_pool(&sv) : run(&sv);
  if (status == 0 && sv.stdio != NULL)
    flush_stdio(&sv);
  if (tl_sys_signalled())
    status = 128 + tl_sys_signalled();
  stop(&sv);
  return status;
}
