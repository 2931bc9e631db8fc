// Temporary output files removed on SIGINT, SIGTERM and SIGHUP (see CKernels.h). The handler only reads the table
// and calls unlink and raise, which are async-signal-safe; a slot is claimed with a compare-and-swap, filled, then
// published, so the handler never reads a half-written path.
#include "CKernels.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

enum { SLOTS = 64, PATH_BYTES = 4096, FREE = 0, FILLING = 1, IN_USE = 2 };

static char paths[SLOTS][PATH_BYTES];
static atomic_int states[SLOTS];

void bp_temporary_register(const char *path) {
  if (strlen(path) >= PATH_BYTES) return;
  for (int i = 0; i < SLOTS; i++) {
    int expected = FREE;
    if (atomic_compare_exchange_strong(&states[i], &expected, FILLING)) {
      strcpy(paths[i], path);
      atomic_store(&states[i], IN_USE);
      return;
    }
  }
}

void bp_temporary_forget(const char *path) {
  for (int i = 0; i < SLOTS; i++) {
    if (atomic_load(&states[i]) == IN_USE && strcmp(paths[i], path) == 0) {
      atomic_store(&states[i], FREE);
      return;
    }
  }
}

static atomic_int critical_depth;
static atomic_int pending_signal;

static void remove_and_reraise(int signal_number) {
  if (atomic_load(&critical_depth) > 0) {  // between two renames that belong together: finish them first
    atomic_store(&pending_signal, signal_number);
    return;
  }
  for (int i = 0; i < SLOTS; i++)
    if (atomic_load(&states[i]) == IN_USE) unlink(paths[i]);
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void bp_interrupts_defer(void) { atomic_fetch_add(&critical_depth, 1); }

void bp_interrupts_resume(void) {
  if (atomic_fetch_sub(&critical_depth, 1) == 1) {
    const int pending = atomic_exchange(&pending_signal, 0);
    if (pending != 0) remove_and_reraise(pending);
  }
}

void bp_temporaries_install_handlers(void) {
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    struct sigaction old;
    if (sigaction(signals[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;  // nohup, background jobs
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = remove_and_reraise;
    action.sa_flags = SA_RESTART;  // a deferred signal returns: interrupted system calls resume
    sigemptyset(&action.sa_mask);
    sigaction(signals[i], &action, NULL);
  }
}
