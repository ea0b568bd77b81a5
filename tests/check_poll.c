/*
 * The poller through the public API: timeouts, wake-ups, bad arguments.
 */
#include "config.h"

#include "helpers.h"

START_TEST(test_poll_new_and_free_empty) {
  np_poll *p = NULL;

  ck_assert_int_eq(np_poll_new(&p), 0);
  ck_assert_ptr_nonnull(p);
  np_poll_free(p);
  np_poll_free(NULL);
}
END_TEST

START_TEST(test_poll_bad_arguments) {
  np_poll *p;
  np_event ev[1];

  ck_assert_int_eq(np_poll_new(NULL), NP_EINVAL);
  ck_assert_int_eq(np_poll_new(&p), 0);
  ck_assert_int_eq(np_poll_wait(NULL, ev, 1, 0), NP_EINVAL);
  ck_assert_int_eq(np_poll_wait(p, NULL, 1, 0), NP_EINVAL);
  ck_assert_int_eq(np_poll_wait(p, ev, 0, 0), NP_EINVAL);
  ck_assert_int_eq(np_poll_wait(p, ev, -3, 0), NP_EINVAL);
  ck_assert_int_eq(np_poll_wake(NULL), NP_EINVAL);
  np_poll_free(p);
}
END_TEST

START_TEST(test_poll_zero_timeout_returns_at_once) {
  np_poll *p;
  np_event ev[4];
  uint64_t start;

  ck_assert_int_eq(np_poll_new(&p), 0);
  start = npt_now_ms();
  ck_assert_int_eq(np_poll_wait(p, ev, 4, 0), 0);
  /* A generous bound: "at once" means no wait, not a timing claim. */
  ck_assert_uint_lt(npt_now_ms() - start, 1000);
  np_poll_free(p);
}
END_TEST

START_TEST(test_poll_positive_timeout_waits_at_least) {
  static const int timeouts[] = {1, 20, 120};
  np_poll *p;
  np_event ev[4];
  size_t i;

  ck_assert_int_eq(np_poll_new(&p), 0);
  for (i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
    uint64_t start = npt_now_ms();

    ck_assert_int_eq(np_poll_wait(p, ev, 4, timeouts[i]), 0);
    ck_assert_uint_ge(npt_now_ms() - start, (uint64_t)timeouts[i]);
  }
  np_poll_free(p);
}
END_TEST

struct waker {
  np_poll *poll;
  int delay_ms;
  int result;
};

static void wake_later(void *arg) {
  struct waker *w = arg;

  npt_sleep_ms(w->delay_ms);
  w->result = np_poll_wake(w->poll);
}

START_TEST(test_poll_wake_ends_infinite_wait) {
  struct waker w = {NULL, 100, 1};
  np_event ev[4];
  npt_thread *t;
  uint64_t start;

  ck_assert_int_eq(np_poll_new(&w.poll), 0);
  start = npt_now_ms();
  t = npt_thread_start(wake_later, &w);
  ck_assert_int_eq(np_poll_wait(w.poll, ev, 4, -1), 0);
  ck_assert_uint_ge(npt_now_ms() - start, 90);
  npt_thread_join(t);
  ck_assert_int_eq(w.result, 0);
  np_poll_free(w.poll);
}
END_TEST

START_TEST(test_poll_wakes_coalesce) {
  np_poll *p;
  np_event ev[4];
  uint64_t start;
  int i;

  ck_assert_int_eq(np_poll_new(&p), 0);
  for (i = 0; i < 1000; i++)
    ck_assert_int_eq(np_poll_wake(p), 0);
  ck_assert_int_eq(np_poll_wait(p, ev, 4, -1), 0);
  /* All thousand wakes were one: the next wait times out. */
  start = npt_now_ms();
  ck_assert_int_eq(np_poll_wait(p, ev, 4, 50), 0);
  ck_assert_uint_ge(npt_now_ms() - start, 50);
  np_poll_free(p);
}
END_TEST

START_TEST(test_poll_wake_before_wait_is_kept) {
  np_poll *p;
  np_event ev[4];

  ck_assert_int_eq(np_poll_new(&p), 0);
  ck_assert_int_eq(np_poll_wake(p), 0);
  /* The wake came before the wait; the wait still returns. */
  ck_assert_int_eq(np_poll_wait(p, ev, 4, -1), 0);
  ck_assert_int_eq(np_poll_wake(p), 0);
  ck_assert_int_eq(np_poll_wait(p, ev, 4, -1), 0);
  np_poll_free(p);
}
END_TEST

struct wake_storm {
  np_poll *poll;
  int count;
};

struct storm_thread {
  struct wake_storm *storm;
  int failures;
};

/* No Check assertion here: a failing one would longjmp across threads. */
static void wake_many(void *arg) {
  struct storm_thread *st = arg;
  int i;

  for (i = 0; i < st->storm->count; i++)
    if (np_poll_wake(st->storm->poll) != 0)
      st->failures++;
}

START_TEST(test_poll_wake_from_many_threads) {
  struct wake_storm w = {NULL, 2000};
  struct storm_thread st[4];
  np_event ev[4];
  npt_thread *t[4];
  int i;

  ck_assert_int_eq(np_poll_new(&w.poll), 0);
  for (i = 0; i < 4; i++) {
    st[i].storm = &w;
    st[i].failures = 0;
    t[i] = npt_thread_start(wake_many, &st[i]);
  }
  for (i = 0; i < 4; i++) {
    npt_thread_join(t[i]);
    ck_assert_int_eq(st[i].failures, 0);
  }
  /* Infinite: a lost wake-up would hang here and fail by timeout. */
  ck_assert_int_eq(np_poll_wait(w.poll, ev, 4, -1), 0);
  ck_assert_int_eq(np_poll_wait(w.poll, ev, 4, 0), 0);
  np_poll_free(w.poll);
}
END_TEST

struct wake_race {
  np_poll *poll;
  int done; /* threads finished, read and written atomically */
};

static void wake_race_thread(void *arg) {
  struct wake_race *r = arg;
  int i;

  for (i = 0; i < 100000; i++)
    np_poll_wake(r->poll);
  __atomic_add_fetch(&r->done, 1, __ATOMIC_SEQ_CST);
}

/* Wakes landing while the poller drains earlier ones must never leave it
 * deaf: a regression test for a drain that swallowed a wake-up whose
 * "pending" flag then stayed set, so every later wake was skipped. */
START_TEST(test_poll_wake_races_with_draining) {
  struct wake_race r = {NULL, 0};
  np_event ev[4];
  npt_thread *t[2];
  uint64_t start;
  int i;

  ck_assert_int_eq(np_poll_new(&r.poll), 0);
  t[0] = npt_thread_start(wake_race_thread, &r);
  t[1] = npt_thread_start(wake_race_thread, &r);
  while (__atomic_load_n(&r.done, __ATOMIC_SEQ_CST) < 2)
    ck_assert_int_eq(np_poll_wait(r.poll, ev, 4, 100), 0);
  npt_thread_join(t[0]);
  npt_thread_join(t[1]);
  /* A pending wake may remain: consume it, then each new wake must end
   * a long wait at once. */
  ck_assert_int_eq(np_poll_wait(r.poll, ev, 4, 0), 0);
  for (i = 0; i < 3; i++) {
    ck_assert_int_eq(np_poll_wake(r.poll), 0);
    start = npt_now_ms();
    ck_assert_int_eq(np_poll_wait(r.poll, ev, 4, 10000), 0);
    ck_assert_uint_lt(npt_now_ms() - start, 5000);
  }
  np_poll_free(r.poll);
}
END_TEST

int main(void) {
  Suite *s = suite_create("poll");
  TCase *tc = npt_tcase(s, "lifecycle");

  tcase_add_test(tc, test_poll_new_and_free_empty);
  tcase_add_test(tc, test_poll_bad_arguments);
  tc = npt_tcase(s, "timeouts");
  tcase_add_test(tc, test_poll_zero_timeout_returns_at_once);
  tcase_add_test(tc, test_poll_positive_timeout_waits_at_least);
  tc = npt_tcase(s, "wake");
  tcase_add_test(tc, test_poll_wake_ends_infinite_wait);
  tcase_add_test(tc, test_poll_wakes_coalesce);
  tcase_add_test(tc, test_poll_wake_before_wait_is_kept);
  tcase_add_test(tc, test_poll_wake_from_many_threads);
  tcase_add_test(tc, test_poll_wake_races_with_draining);
  return npt_run(s);
}
