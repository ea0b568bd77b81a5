/*
 * The POSIX half of the benchmark harness: clock, threads, memory from
 * /proc, the open-file limit, the private pipe directory and child runs.
 */
#define _GNU_SOURCE /* SCHED_IDLE, sched_getaffinity */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

void bh__os_init(void) {
  /* The raw baselines write to sockets whose peer may be gone. */
  signal(SIGPIPE, SIG_IGN);
}

double bh_now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bh_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  if (ms <= 0) {
    sched_yield();
    return;
  }
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

int bh_under_wine(void) { return 0; }

int bh_ncpu(void) {
  cpu_set_t set;

  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  return 1;
}

void bh_process_memory(int64_t *committed, int64_t *resident) {
  long size, rss, shared, text, lib, data;
  long page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/statm", "r");

  *committed = *resident = -1;
  if (f == NULL)
    return;
  if (fscanf(f, "%ld %ld %ld %ld %ld %ld", &size, &rss, &shared, &text, &lib,
             &data) == 6) {
    *committed = (int64_t)data * page;
    *resident = (int64_t)rss * page;
  }
  fclose(f);
}

double bh_cpu_time(void) {
  struct timespec ts;

  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
    return bh_nan();
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long bh_raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return -1;
  if (rl.rlim_cur != rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
}

static char private_dir[64];
static pid_t private_owner;

static void remove_private_dir(void) {
  char cmd[128];

  /* Forked children (none today) must not remove the parent's tree. */
  if (private_dir[0] == '\0' || getpid() != private_owner)
    return;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", private_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench: could not remove %s\n", private_dir);
}

const char *bh_private_dir(void) {
  if (private_dir[0] != '\0')
    return private_dir;
  snprintf(private_dir, sizeof(private_dir), "/tmp/npbench-%lu-XXXXXX",
           (unsigned long)getpid());
  if (mkdtemp(private_dir) == NULL) {
    perror("bench: mkdtemp");
    exit(EXIT_FAILURE);
  }
  setenv("NPIPE_DIR", private_dir, 1);
  private_owner = getpid();
  atexit(remove_private_dir);
  return private_dir;
}

void bh_unique_name(char *buf, size_t len, const char *tag) {
  static int counter;

  snprintf(buf, len, "npb-%lu-%d-%s", (unsigned long)getpid(), ++counter, tag);
}

struct bh_thread {
  pthread_t id;
  void (*fn)(void *);
  void *arg;
};

static void *thread_main(void *p) {
  bh_thread *t = p;

  t->fn(t->arg);
  return NULL;
}

bh_thread *bh_thread_start(void (*fn)(void *), void *arg) {
  bh_thread *t = malloc(sizeof(*t));
  int rc;

  if (t == NULL) {
    fprintf(stderr, "bench: out of memory\n");
    exit(EXIT_FAILURE);
  }
  t->fn = fn;
  t->arg = arg;
  rc = pthread_create(&t->id, NULL, thread_main, t);
  if (rc != 0) {
    fprintf(stderr, "bench: pthread_create: %s\n", strerror(rc));
    exit(EXIT_FAILURE);
  }
  return t;
}

void bh_thread_join(bh_thread *t) {
  pthread_join(t->id, NULL);
  free(t);
}

void bh__lower_priority(void) {
  struct sched_param sp = {0};

  /* SCHED_IDLE runs only when nothing else wants the CPU; nice 19 is
   * the fallback where the policy is refused. */
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0 &&
      nice(19) < 0)
    fprintf(stderr, "bench: could not lower the spinner's priority\n");
}

int bh_self_run(const char *const *args, double *values, int n) {
  static char out[4096];
  char *argv[16];
  posix_spawn_file_actions_t fa;
  size_t total = 0;
  ssize_t got;
  int fds[2], status, rc, k;
  pid_t pid;

  argv[0] = "/proc/self/exe";
  for (k = 0; args[k] != NULL && k + 2 < 16; k++)
    argv[k + 1] = (char *)args[k];
  argv[k + 1] = NULL;
  if (pipe(fds) < 0)
    return -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    fprintf(stderr, "bench: posix_spawn: %s\n", strerror(rc));
    return -1;
  }
  while (total + 1 < sizeof(out) &&
         (got = read(fds[0], out + total, sizeof(out) - 1 - total)) > 0)
    total += (size_t)got;
  out[total] = '\0';
  close(fds[0]);
  waitpid(pid, &status, 0);
  return bh__child_parse(out, values, n);
}
