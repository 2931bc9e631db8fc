// CKernels' thread pool under stress: two million jobs of 1 to 37 tasks back to back, each task checking that it runs
// exactly once, with its own job's context; thread_pool.c is compiled in with a random delay between a worker's
// read of the ticket and its claim (BP_POOL_STRESS), where a first version let a worker claim a task on a closed
// job's stale ticket (it fails here within seconds without the closing store). Not part of the build:
//   clang -O2 -march=native -I Sources/CKernels/include -D'BP_POOL_STRESS()=pool_stress_delay()' \
//     -include scripts/sgemm_probe/pool_stress_delay.h scripts/sgemm_probe/pool_stress.c Sources/CKernels/thread_pool.c \
//     -o /tmp/pool_stress -lpthread && /tmp/pool_stress
#include "../../Sources/CKernels/include/CKernels.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
typedef struct { int job; _Atomic int *hits; int tasks; } ctx_t;
static _Atomic int bad = 0;
static void task(void *c, size_t i) { ctx_t *x = c; if ((int)i >= x->tasks) atomic_fetch_add(&bad, 1); atomic_fetch_add(&x->hits[i], 1); for (volatile int s = 0; s < (int)(i * 7919 % 300); s++); }
int main(void) {
  _Atomic int hits[64];
  for (int job = 0; job < 2000000; job++) {
    ctx_t x = {job, hits, 1 + (job * 2654435761u >> 7) % 37};
    for (int i = 0; i < 64; i++) atomic_store(&hits[i], 0);
    if (bp_pool_run(2, x.tasks, task, &x) != 0) { printf("refused\n"); return 1; }
    for (int i = 0; i < 64; i++) if (atomic_load(&hits[i]) != (i < x.tasks)) { printf("job %d task %d ran %d times\n", job, i, atomic_load(&hits[i])); return 1; }
  }
  printf("ok, bad %d\n", atomic_load(&bad));
}
