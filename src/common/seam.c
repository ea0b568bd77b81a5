/*
 * The portable half of the test seam (common/seam.h): call counting,
 * armed faults, call sites, the observer and the allocation wrappers.
 * Compiled without the redirect macros, so malloc here is the C
 * library's.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/seam.h"

#define CLASS_BITS 7
#define SITE_SLOTS 4096 /* a power of two, well above the library's sites */

struct site {
  const char *file;
  int line;
};

struct fn_fault {
  long err;
  unsigned long left; /* calls still to fail; 0 with forever: all */
  int armed, forever;
};

static const char *next_file; /* set by np__seam_at for the next call */
static int next_line;
static unsigned long class_calls[CLASS_BITS];
static unsigned long injected;
static struct np__seam_call last_injected;
static unsigned armed_class; /* 0: no nth fault armed */
static unsigned long armed_n;
static long armed_err;
static struct fn_fault *fn_faults; /* np__seam_fn_total entries */
static np__seam_observer observer;
static void *observer_ctx;
static long allocs;
static struct site sites[SITE_SLOTS];
static size_t nsites;

static int class_index(unsigned cls) {
  int i;

  for (i = 0; i < CLASS_BITS; i++)
    if (cls == (1u << i))
      return i;
  return -1;
}

static struct fn_fault *faults(void) {
  if (fn_faults == NULL)
    fn_faults = calloc((size_t)np__seam_fn_total, sizeof(*fn_faults));
  return fn_faults;
}

void np__seam_reset(void) {
  struct fn_fault *f = faults();

  memset(class_calls, 0, sizeof(class_calls));
  injected = 0;
  armed_class = 0;
  observer = NULL;
  observer_ctx = NULL;
  if (f != NULL)
    memset(f, 0, (size_t)np__seam_fn_total * sizeof(*f));
}

void np__seam_fail_nth(unsigned long n, unsigned cls, long err) {
  int i = class_index(cls);

  armed_class = i >= 0 ? cls : 0;
  armed_n = (i >= 0 ? class_calls[i] : 0) + n;
  armed_err = err;
}

void np__seam_fail_fn(int fn, long err, unsigned long count) {
  struct fn_fault *f = faults();

  if (f == NULL || fn < 0 || fn >= np__seam_fn_total)
    return;
  f[fn].err = err;
  f[fn].left = count;
  f[fn].forever = count == 0;
  f[fn].armed = 1;
}

unsigned long np__seam_calls(unsigned cls) {
  int i = class_index(cls);

  return i >= 0 ? class_calls[i] : 0;
}

unsigned long np__seam_injected(void) { return injected; }

const struct np__seam_call *np__seam_last_injected(void) {
  return &last_injected;
}

long np__seam_allocs(void) { return allocs; }

size_t np__seam_sites(void) { return nsites; }

void np__seam_observe(np__seam_observer fn, void *ctx) {
  observer = fn;
  observer_ctx = ctx;
}

int np__seam_fn_id(const char *name) {
  int i;

  for (i = 0; i < np__seam_fn_total; i++)
    if (strcmp(np__seam_fns[i].name, name) == 0)
      return i;
  return -1;
}

const char *np__seam_fn_name(int fn) {
  return fn >= 0 && fn < np__seam_fn_total ? np__seam_fns[fn].name : "?";
}

unsigned np__seam_fn_class(int fn) {
  return fn >= 0 && fn < np__seam_fn_total ? np__seam_fns[fn].cls : 0;
}

int np__seam_fn_count(void) { return np__seam_fn_total; }

void np__seam_at(const char *file, int line) {
  next_file = file;
  next_line = line;
}

void np__seam_count_alloc(int delta) { allocs += delta; }

/* Remembers a call site; open addressing on the file pointer and line. */
static void note_site(const char *file, int line) {
  size_t h = ((size_t)(uintptr_t)file ^ (size_t)line * 2654435761u);
  size_t i;

  if (file == NULL || nsites >= SITE_SLOTS / 2)
    return;
  for (i = h & (SITE_SLOTS - 1);; i = (i + 1) & (SITE_SLOTS - 1)) {
    if (sites[i].file == NULL) {
      sites[i].file = file;
      sites[i].line = line;
      nsites++;
      return;
    }
    if (sites[i].line == line &&
        (sites[i].file == file || strcmp(sites[i].file, file) == 0))
      return;
  }
}

/* The error a per-function fault injects into this call, or 0. */
static long fn_fault_err(int fn) {
  struct fn_fault *f = faults();
  long err;

  if (f == NULL || !f[fn].armed)
    return 0;
  err = f[fn].err != 0 ? f[fn].err : np__seam_fns[fn].err;
  if (!f[fn].forever && --f[fn].left == 0)
    f[fn].armed = 0;
  return err;
}

long np__seam_enter(struct np__seam_call *c, int fn, const uintptr_t *args,
                    int nargs) {
  unsigned cls = np__seam_fns[fn].cls;
  long err = 0;
  int i;

  memset(c, 0, sizeof(*c));
  c->fn = fn;
  c->nargs = nargs;
  memcpy(c->arg, args, (size_t)nargs * sizeof(*args));
  c->file = next_file;
  c->line = next_line;
  next_file = NULL;
  note_site(c->file, c->line);
  if (!(cls & NP__SEAM_NOFAIL)) {
    for (i = 0; i < CLASS_BITS; i++)
      if (cls & (1u << i))
        class_calls[i]++;
    if (armed_class != 0 && (cls & armed_class) &&
        class_calls[class_index(armed_class)] == armed_n) {
      armed_class = 0;
      err = armed_err != 0 ? armed_err : np__seam_fns[c->fn].err;
    }
    if (err == 0)
      err = fn_fault_err(c->fn);
  }
  if (observer != NULL) {
    long want = observer(c, 0, observer_ctx);

    if (err == 0 && !(cls & NP__SEAM_NOFAIL))
      err = want;
  }
  return err;
}

void np__seam_leave(struct np__seam_call *c, intptr_t result, long err,
                    int faulted) {
  c->result = result;
  c->err = err;
  c->injected = faulted;
  if (faulted) {
    injected++;
    last_injected = *c;
  }
  if (observer != NULL)
    (void)observer(c, 1, observer_ctx);
}

/* ---- the allocation wrappers ------------------------------------------- */

static void *alloc_done(struct np__seam_call *c, void *p, int counted) {
  if (p != NULL && counted)
    allocs++;
  np__seam_leave(c, (intptr_t)p, p == NULL ? ENOMEM : 0, 0);
  return p;
}

static long alloc_enter(struct np__seam_call *c, int fn, uintptr_t a0,
                        uintptr_t a1) {
  const uintptr_t args[2] = {a0, a1};

  return np__seam_enter(c, fn, args, 2);
}

/* A failed allocation sets errno as the C library does and returns
 * NULL. */
static void *alloc_fail(struct np__seam_call *c, long err) {
  errno = (int)err;
  np__seam_leave(c, 0, err, 1);
  return NULL;
}

void *np__seam_malloc(size_t size) {
  struct np__seam_call c;
  long err = alloc_enter(&c, NP__SEAM_MALLOC, size, 0);

  return err != 0 ? alloc_fail(&c, err) : alloc_done(&c, malloc(size), 1);
}

void *np__seam_calloc(size_t n, size_t size) {
  struct np__seam_call c;
  long err = alloc_enter(&c, NP__SEAM_CALLOC, n, size);

  return err != 0 ? alloc_fail(&c, err) : alloc_done(&c, calloc(n, size), 1);
}

void *np__seam_realloc(void *p, size_t size) {
  struct np__seam_call c;
  long err = alloc_enter(&c, NP__SEAM_REALLOC, (uintptr_t)p, size);

  if (err != 0)
    return alloc_fail(&c, err);
  return alloc_done(&c, realloc(p, size), p == NULL);
}

void np__seam_free(void *p) {
  struct np__seam_call c;

  (void)alloc_enter(&c, NP__SEAM_FREE, (uintptr_t)p, 0);
  if (p != NULL)
    allocs--;
  free(p);
  np__seam_leave(&c, 0, 0, 0);
}
