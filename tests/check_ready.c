/*
 * The core's readiness policy, white-box, through test sources that are
 * signalled by hand.  Runs on both backends, so the policy is checked
 * together with each backend's wait loop.
 */
#include "config.h"

#include <string.h>

#include "helpers.h"
#include "internal.h"

struct test_source {
  struct np__source src;
  int interest_changes;
  int orphan_closes;
};

static void on_interest(struct np__source *src) {
  NP__CONTAINER_OF(src, struct test_source, src)->interest_changes++;
}

static void on_orphan(struct np__source *src) {
  NP__CONTAINER_OF(src, struct test_source, src)->orphan_closes++;
  np__source_deregister(src);
}

static const struct np__source_ops test_ops = {on_interest, on_orphan};

static np_poll *poll_;

static void setup(void) { ck_assert_int_eq(np_poll_new(&poll_), 0); }

static void teardown(void) {
  np_poll_free(poll_);
  poll_ = NULL;
}

static void add(struct test_source *t, uint64_t token, uint32_t interest) {
  memset(t, 0, sizeof(*t));
  np__source_register(np__poll_core(poll_), &t->src, &test_ops, token,
                      interest);
}

/* One non-blocking wait; returns the count and fills evs. */
static int wait0(np_event *evs, int max) {
  return np_poll_wait(poll_, evs, max, 0);
}

START_TEST(test_ready_level_repeats_while_ready) {
  struct test_source t;
  np_event ev[4];
  int i;

  add(&t, 7, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_signal(&t.src, NP_READABLE);
  for (i = 0; i < 3; i++) {
    ck_assert_int_eq(wait0(ev, 4), 1);
    ck_assert_uint_eq(ev[0].token, 7);
    ck_assert_uint_eq(ev[0].events, NP_READABLE);
  }
  np__source_clear(&t.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_deregister(&t.src);
}
END_TEST

START_TEST(test_ready_edge_once_per_transition) {
  struct test_source t;
  np_event ev[4];

  add(&t, 8, NP_READABLE | NP_WRITABLE | NP_EDGE);
  np__source_signal(&t.src, NP_WRITABLE);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].events, NP_WRITABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_signal(&t.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 1);
  /* Only the new transition: writable still holds but was reported. */
  ck_assert_uint_eq(ev[0].events, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_signal(&t.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].events, NP_READABLE);
  np__source_deregister(&t.src);
}
END_TEST

START_TEST(test_ready_oneshot_disarms_until_rearmed) {
  struct test_source t;
  np_event ev[4];

  add(&t, 9, NP_READABLE | NP_ONESHOT);
  np__source_signal(&t.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].events, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_signal(&t.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  ck_assert_int_eq(np__source_set_interest(&t.src, 10,
                                           NP_READABLE | NP_ONESHOT), 0);
  ck_assert_int_eq(t.interest_changes, 1);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].token, 10);
  ck_assert_uint_eq(ev[0].events, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_deregister(&t.src);
}
END_TEST

START_TEST(test_ready_interest_filters_events) {
  struct test_source t;
  np_event ev[4];

  add(&t, 11, NP_READABLE);
  np__source_signal(&t.src, NP_WRITABLE);
  ck_assert_int_eq(wait0(ev, 4), 0);
  np__source_signal(&t.src, NP_HUP);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].events, NP_HUP);
  ck_assert_int_eq(np__source_set_interest(&t.src, 11, 0), 0);
  ck_assert_int_eq(wait0(ev, 4), 0);
  ck_assert_int_eq(np__source_set_interest(&t.src, 11,
                                           NP_READABLE | NP_WRITABLE), 0);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].events, NP_WRITABLE | NP_HUP);
  np__source_deregister(&t.src);
}
END_TEST

START_TEST(test_ready_bad_interest) {
  struct test_source t;

  add(&t, 12, NP_READABLE);
  ck_assert_int_eq(np__source_set_interest(&t.src, 12, 0x100), NP_EINVAL);
  ck_assert_int_eq(np__source_set_interest(&t.src, 12, NP_HUP), NP_EINVAL);
  ck_assert_int_eq(
      np__source_set_interest(&t.src, 12, NP_READABLE | NP_EDGE | NP_ONESHOT),
      NP_EINVAL);
  ck_assert_int_eq(t.interest_changes, 0);
  np__source_deregister(&t.src);
}
END_TEST

START_TEST(test_ready_full_array_does_not_starve) {
  struct test_source t[5];
  int seen[5] = {0};
  np_event ev[2];
  int round, i, n;

  for (i = 0; i < 5; i++) {
    add(&t[i], (uint64_t)i, NP_READABLE);
    np__source_signal(&t[i].src, NP_READABLE);
  }
  /* Five level-ready sources, two slots: ten reports in five waits reach
   * every source exactly twice. */
  for (round = 0; round < 5; round++) {
    n = wait0(ev, 2);
    ck_assert_int_eq(n, 2);
    for (i = 0; i < n; i++)
      seen[ev[i].token]++;
  }
  for (i = 0; i < 5; i++) {
    ck_assert_int_eq(seen[i], 2);
    np__source_deregister(&t[i].src);
  }
}
END_TEST

START_TEST(test_ready_no_duplicates_in_one_batch) {
  struct test_source t;
  np_event ev[8];

  add(&t, 13, NP_READABLE | NP_WRITABLE);
  np__source_signal(&t.src, NP_READABLE);
  np__source_signal(&t.src, NP_WRITABLE);
  np__source_signal(&t.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 8), 1);
  ck_assert_uint_eq(ev[0].events, NP_READABLE | NP_WRITABLE);
  np__source_deregister(&t.src);
}
END_TEST

START_TEST(test_ready_deregistered_never_reported) {
  struct test_source a, b;
  np_event ev[4];

  add(&a, 21, NP_READABLE);
  add(&b, 22, NP_READABLE);
  np__source_signal(&a.src, NP_READABLE);
  np__source_signal(&b.src, NP_READABLE);
  np__source_deregister(&a.src);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].token, 22);
  /* Signals after deregistration are ignored too. */
  np__source_signal(&a.src, NP_READABLE);
  ck_assert_int_eq(wait0(ev, 4), 1);
  ck_assert_uint_eq(ev[0].token, 22);
  np__source_deregister(&b.src);
  ck_assert_int_eq(wait0(ev, 4), 0);
}
END_TEST

START_TEST(test_ready_poll_free_closes_orphans) {
  struct test_source a, b;

  add(&a, 31, NP_READABLE);
  add(&b, 32, NP_READABLE);
  np__source_signal(&b.src, NP_READABLE);
  ck_assert_uint_eq(np__poll_core(poll_)->live, 2);
  np_poll_free(poll_);
  poll_ = NULL;
  ck_assert_int_eq(a.orphan_closes, 1);
  ck_assert_int_eq(b.orphan_closes, 1);
  ck_assert_int_eq(np_poll_new(&poll_), 0);
}
END_TEST

START_TEST(test_ready_blocking_wait_returns_queued) {
  struct test_source t;
  np_event ev[4];

  add(&t, 41, NP_WRITABLE);
  np__source_signal(&t.src, NP_WRITABLE);
  /* A queued source must not let the wait block on the OS. */
  ck_assert_int_eq(np_poll_wait(poll_, ev, 4, -1), 1);
  ck_assert_uint_eq(ev[0].events, NP_WRITABLE);
  np__source_deregister(&t.src);
}
END_TEST

/* ---- timers -------------------------------------------------------------- */

#define TIMERS 512

struct test_timer {
  struct np__timer t;
  int fired;
  uint64_t fired_at;
};

static struct test_timer timers_[TIMERS];
static int want_[TIMERS]; /* 1: stays armed and must fire */
static uint64_t last_due_;
static int order_ok_, fired_total_;

static void on_fire(struct np__timer *t) {
  struct test_timer *tt = NP__CONTAINER_OF(t, struct test_timer, t);

  tt->fired++;
  tt->fired_at = np__now_ms();
  order_ok_ &= t->due >= last_due_ && tt->fired_at >= t->due;
  last_due_ = t->due;
  fired_total_++;
}

/* A cheap deterministic sequence, so a failure repeats. */
static unsigned next_rand(unsigned *x) {
  *x = *x * 1103515245u + 12345u;
  return (*x >> 16) & 0x7fffu;
}

/* Hundreds of timers armed, re-armed and stopped in a shuffled order
 * fire exactly once each (the stopped ones never), earliest first, and
 * never before they are due; np_poll_wait's own waits wake them. */
START_TEST(test_ready_timers_fire_in_order_once) {
  struct np__poll_core *core = np__poll_core(poll_);
  unsigned seed = 7;
  int i, armed = 0;
  uint64_t deadline;
  np_event ev[4];

  order_ok_ = 1;
  last_due_ = 0;
  fired_total_ = 0;
  for (i = 0; i < TIMERS; i++) {
    memset(&timers_[i], 0, sizeof(timers_[i]));
    np__timer_init(&timers_[i].t, on_fire);
    np__timer_start(core, &timers_[i].t, next_rand(&seed) % 60);
  }
  for (i = 0; i < TIMERS; i++) {
    unsigned r = next_rand(&seed) % 3;

    if (r == 0)
      np__timer_stop(core, &timers_[i].t);
    else if (r == 1)
      np__timer_start(core, &timers_[i].t, next_rand(&seed) % 60);
    want_[i] = r != 0;
    armed += want_[i];
  }
  /* The earliest timer shortens a wait; none is due before 60 ms. */
  ck_assert_int_le(np__timer_wait_ms(core, -1), 60);
  ck_assert_int_eq(np__timer_wait_ms(core, 0), 0);
  deadline = npt_now_ms() + 10000;
  while (fired_total_ < armed && npt_now_ms() < deadline)
    ck_assert_int_eq(np_poll_wait(poll_, ev, 4, 1000), 0);
  ck_assert_int_eq(fired_total_, armed);
  ck_assert(order_ok_);
  for (i = 0; i < TIMERS; i++)
    ck_assert_int_eq(timers_[i].fired, want_[i]);
  ck_assert_ptr_null(core->timers);
  ck_assert_int_eq(np__timer_wait_ms(core, -1), -1);
}
END_TEST

static struct np__timer self_rearm_;
static int self_rearm_count_;

static void rearm_self(struct np__timer *t) {
  if (++self_rearm_count_ < 3)
    np__timer_start(np__poll_core(poll_), t, 5);
}

/* A wait with a timeout longer than the timers returns only after its
 * timeout, having fired a timer that re-arms itself from its callback. */
START_TEST(test_ready_timer_rearms_from_callback) {
  uint64_t start = npt_now_ms();
  np_event ev[4];

  self_rearm_count_ = 0;
  np__timer_init(&self_rearm_, rearm_self);
  np__timer_start(np__poll_core(poll_), &self_rearm_, 5);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 4, 200), 0);
  ck_assert_int_ge(npt_now_ms() - start, 200);
  ck_assert_int_eq(self_rearm_count_, 3);
  ck_assert(!self_rearm_.armed);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ready");
  TCase *tc = npt_tcase(s, "policy");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_ready_level_repeats_while_ready);
  tcase_add_test(tc, test_ready_edge_once_per_transition);
  tcase_add_test(tc, test_ready_oneshot_disarms_until_rearmed);
  tcase_add_test(tc, test_ready_interest_filters_events);
  tcase_add_test(tc, test_ready_bad_interest);
  tcase_add_test(tc, test_ready_full_array_does_not_starve);
  tcase_add_test(tc, test_ready_no_duplicates_in_one_batch);
  tcase_add_test(tc, test_ready_deregistered_never_reported);
  tcase_add_test(tc, test_ready_poll_free_closes_orphans);
  tcase_add_test(tc, test_ready_blocking_wait_returns_queued);
  tc = npt_tcase(s, "timer");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_ready_timers_fire_in_order_once);
  tcase_add_test(tc, test_ready_timer_rearms_from_callback);
  return npt_run(s);
}
