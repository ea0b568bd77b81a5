/*
 * The poller's lock, and the bookkeeping of the threads that wait in the
 * OS without it: a thread that leaves work queued must wake one of them,
 * or that work would wait for the next OS notification.
 */
#include "config.h"

#ifdef _WIN32
#include <windows.h>
#endif

#include "internal.h"

/* Spins before sleeping: the lock is held for a system call at most,
 * and a thread that sleeps on it costs its holder a wake-up call and
 * itself a trip through the scheduler, far more than the wait (threads
 * that share a poller collide often, since a completion that wakes one
 * was caused by the other's last call).  A thread alone on its poller
 * takes the lock at the first try. */
#define SPINS 1000

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#ifdef _WIN32
/* An SRWLOCK is one pointer, and np__lock has exactly that layout. */
#define SRW(l) ((PSRWLOCK)(void *)&(l)->opaque)

void np__lock_init(np__lock *l) { InitializeSRWLock(SRW(l)); }
void np__lock_destroy(np__lock *l) { NP__UNUSED(l); }
void np__lock_acquire(np__lock *l) {
  int i;

  for (i = 0; i < SPINS; i++) {
    if (TryAcquireSRWLockExclusive(SRW(l)))
      return;
    relax();
  }
  AcquireSRWLockExclusive(SRW(l));
}
void np__lock_release(np__lock *l) { ReleaseSRWLockExclusive(SRW(l)); }
#else
void np__lock_init(np__lock *l) { (void)pthread_mutex_init(l, NULL); }
void np__lock_destroy(np__lock *l) { (void)pthread_mutex_destroy(l); }
void np__lock_acquire(np__lock *l) {
  int i;

  for (i = 0; i < SPINS; i++) {
    if (pthread_mutex_trylock(l) == 0)
      return;
    relax();
  }
  (void)pthread_mutex_lock(l);
}
void np__lock_release(np__lock *l) { (void)pthread_mutex_unlock(l); }
#endif

void np__core_lock(struct np__poll_core *core) { np__lock_acquire(&core->lock); }

void np__core_unlock(struct np__poll_core *core) {
  /* A thread alone on its poller is never in the OS wait while it makes
   * a call, so this costs it nothing. */
  if (core->os_waiters > 0 && np__core_has_queued(core))
    np__core_nudge(core);
  np__lock_release(&core->lock);
}

void np__core_os_wait_begin(struct np__poll_core *core) {
  if (core->os_waiters++ > 0)
    core->shared = 1;
  np__lock_release(&core->lock);
}

void np__core_os_wait_end(struct np__poll_core *core) {
  np__lock_acquire(&core->lock);
  core->os_waiters--;
}

void np__core_nudge(struct np__poll_core *core) {
  if (core->nudged)
    return;
  core->nudged = 1;
  np__backend_nudge(core);
}

void np__core_nudge_taken(struct np__poll_core *core) { core->nudged = 0; }

void np__core_fini(struct np__poll_core *core) {
  np__lock_destroy(&core->lock);
}
