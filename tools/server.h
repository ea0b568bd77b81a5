/*
 * What serve.c (the server, and its loop on one thread) shares with
 * serve-pool.c (its loop on a pool of threads, pipe-server --threads).
 */
#ifndef NP_TOOLS_SERVER_H
#define NP_TOOLS_SERVER_H

#include "tools.h"

#define LISTENER_TOKEN 0 /* no end lives at address 0, and no pool slot */

struct session {
  struct tl_relay relay;
  struct session *next;
  char name[32]; /* "client 7" */
  /* The pool only (serve-pool.c), all under the server's lock: */
  struct session *next_free; /* in the list of free slots */
  struct session *next_due;  /* claimed by a channel scan */
  uint32_t index;            /* the slot's place in the table */
  uint32_t gen;              /* counts the slot's uses */
  int live;                  /* the slot holds a session */
  int held;                  /* a thread works on the session */
  int pending;               /* work arrived while it was held */
  uint32_t events[2];        /* reports for each end meanwhile */
};

struct server {
  const struct tl_server_config *cfg;
  np_poll *poll;
  np_listener *listener;
  tl_chan *stdio; /* TL_SERVE_STDIO: the clients take turns with it */
  struct session *sessions;
  int count;
  unsigned accepted;
  int paused;
  int status;
  /* The pool only (serve-pool.c): */
  tl_lock *lock;          /* guards the fields above and the slots */
  int stop;               /* every thread leaves its loop */
  int running;            /* pool threads not yet finished */
  struct session **slots; /* every session ever allocated, by index */
  uint32_t nslots, cap;
  struct session *free;      /* slots not in use */
  struct session *lingering; /* --once: the session to linger on */
};

/* The token and the interest for end i of s as the server's mode
 * registers it: the end's address and TL_STREAM_INTEREST on one thread,
 * the slot's token and no interest (armed after the first pump) in a
 * pool. */
uint64_t tl_serve_token(const struct server *sv, struct session *s, int i);
uint32_t tl_serve_interest(const struct server *sv);
/* Says who connected (-v) and applies --allow-user: returns 0 to serve
 * the client, or -1 when it is refused (always logged, with the
 * reason). */
int tl_serve_admit(const struct server *sv, struct session *s,
                   np_stream *client);
/* Fills the peer side (ends[1]) and the directions for the mode.
 * Returns 0, or an exit status for --once. */
int tl_serve_setup_peer(struct server *sv, struct session *s);
/* Reports how the client's relay went, and the --once status (which the
 * caller guards in a pool). */
void tl_serve_report_end(struct server *sv, struct session *s);

/* Serves with cfg->threads threads on sv's poller until a signal or the
 * end of --once; then every thread has finished and sv's sessions are
 * closed.  Returns the exit status (without the signal's). */
int tl_serve_pool(struct server *sv);

#endif /* NP_TOOLS_SERVER_H */
