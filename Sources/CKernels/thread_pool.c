// The engine's worker threads (TensorCore's `Parallel`): one job at a time, its tasks claimed one by one by the
// calling thread and by workers that wait for the next job spinning for a while before they sleep.
//
// Why: a forward of SmolLM2 hands work to the other core about 300 times (210 GEMMs, the norms, attention).
// Through libdispatch each hand-off woke a sleeping thread; on a 2-core Xeon VM (family 6 model 207) a 128-token
// forward then ran its 210 linear products at 193 GFLOP/s against 260 with a spinning hand-off in a C probe of the
// same kernel calls (scripts/sgemm_probe/pool_handoff.c), 37 ms of a 185 ms forward. A sleeping vCPU takes tens of
// microseconds to wake; a spinning one sees the job in well under one.
//
// Protocol. `ticket` packs the job's generation (high 32 bits) and the next unclaimed task (low 32). The caller
// writes the job (fn, ctx, tasks), resets `completed`, then publishes ticket = (generation + 1, 0). A worker claims
// task i by a compare-and-swap of (g, i) to (g, i + 1) after reading the job's fields: success means job g was
// still open (i < tasks) when it read them, and the caller rewrites them only after every task of g has completed,
// so they were g's. The caller claims tasks the same way, then waits until `completed` reaches `tasks`; a worker
// adds to `completed` after its task returns, so nobody touches the job once the caller has returned. Before it
// returns, the caller closes the job (ticket = (g, UINT32_MAX)): otherwise a worker that read (g, i) with i at or
// past g's task count, then the next job's larger count, could claim i on g's ticket before the next job is
// published, and run a task twice with the wrong job (a first version did, under `perf record`).
//
// Sleeping. A worker that sees no new job for `BP_POOL_SPIN_NS` parks on a condition variable, counted in
// `sleepers`; a caller that finds sleepers after publishing wakes them. Both sides use sequentially consistent
// operations on `ticket` and `sleepers` (a store then a load on each side), so one of them always sees the other.
// The spin is bounded in time so that idle workers give their cores back (to libdispatch's threads, to other
// processes) within a millisecond of the last job.
#include "CKernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BP_RELAX() _mm_pause()
#else
#define BP_RELAX() ((void)0)
#endif

/// How long an idle worker spins before it sleeps (ns): longer than the gaps between a forward's parallel steps,
/// short enough to give the core back soon after the work stops.
enum { BP_POOL_SPIN_NS = 1000000 };
enum { BP_POOL_MAX_WORKERS = 63 };

static struct {
  pthread_mutex_t submit;  // one job at a time; a second caller gets -1 (trylock) and splits the work itself
  pthread_mutex_t lock;    // guards sleeping
  pthread_cond_t wake;
  _Atomic uint64_t ticket;
  _Atomic(bp_pool_task) fn;
  _Atomic(void *) ctx;
  _Atomic uint32_t tasks;
  _Atomic uint32_t completed;
  _Atomic int sleepers;
  _Atomic int helpers;  // workers that take part in the current job: those with index < workers − 1
  int started;  // threads created so far (under submit)
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Claims and runs tasks of generation `generation` until none is left or another job has begun; returns how many it ran.
static uint32_t run_tasks(uint32_t generation) {
  uint32_t ran = 0;
  for (;;) {
    uint64_t t = atomic_load(&pool.ticket);
    if ((uint32_t)(t >> 32) != generation) return ran;
    const bp_pool_task fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&pool.ctx, memory_order_relaxed);
    const uint32_t tasks = atomic_load_explicit(&pool.tasks, memory_order_relaxed);
    const uint32_t i = (uint32_t)t;
    if (i >= tasks) return ran;
#ifdef BP_POOL_STRESS
    BP_POOL_STRESS();  // scripts/sgemm_probe/pool_stress.c: a random delay here, where a stale ticket would be claimed
#endif
    if (!atomic_compare_exchange_weak(&pool.ticket, &t, t + 1)) continue;
    fn(ctx, i);
    ran++;
    atomic_fetch_add_explicit(&pool.completed, 1, memory_order_release);
  }
}

static void *worker(void *argument) {
  const int index = (int)(intptr_t)argument;
  uint32_t seen = (uint32_t)(atomic_load(&pool.ticket) >> 32);
  for (;;) {
    // wait for a generation after `seen`: spin, then sleep
    uint32_t generation = (uint32_t)(atomic_load(&pool.ticket) >> 32);
    if (generation == seen) {
      const uint64_t start = now_ns();
      for (unsigned spins = 1;; spins++) {
        BP_RELAX();
        generation = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_relaxed) >> 32);
        if (generation != seen) break;
        if ((spins & 255) == 0 && now_ns() - start > BP_POOL_SPIN_NS) {
          pthread_mutex_lock(&pool.lock);
          atomic_fetch_add(&pool.sleepers, 1);
          while ((generation = (uint32_t)(atomic_load(&pool.ticket) >> 32)) == seen)
            pthread_cond_wait(&pool.wake, &pool.lock);
          atomic_fetch_sub(&pool.sleepers, 1);
          pthread_mutex_unlock(&pool.lock);
          break;
        }
      }
    }
    seen = generation;
    if (index < atomic_load(&pool.helpers)) run_tasks(generation);
  }
  return 0;
}

int bp_pool_run(size_t workers, size_t tasks, bp_pool_task fn, void *ctx) {
  if (tasks == 0) return 0;
  if (fn == 0 || workers < 2 || tasks >= UINT32_MAX) return -1;
  if (pthread_mutex_trylock(&pool.submit) != 0) return -1;
  const int wanted = workers - 1 < BP_POOL_MAX_WORKERS ? (int)(workers - 1) : BP_POOL_MAX_WORKERS;
  while (pool.started < wanted) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 8u << 20);  // Swift task bodies run here; glibc's default is 8 MB too
    const int rc = pthread_create(&thread, &attributes, worker, (void *)(intptr_t)pool.started);
    pthread_attr_destroy(&attributes);
    if (rc != 0) break;
    pool.started++;
  }
  if (pool.started == 0) {
    pthread_mutex_unlock(&pool.submit);
    return -1;
  }
  atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
  atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&pool.tasks, (uint32_t)tasks, memory_order_relaxed);
  atomic_store_explicit(&pool.completed, 0, memory_order_relaxed);
  atomic_store_explicit(&pool.helpers, wanted, memory_order_relaxed);
  const uint32_t generation = (uint32_t)(atomic_load(&pool.ticket) >> 32) + 1;
  atomic_store(&pool.ticket, (uint64_t)generation << 32);
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
  }
  run_tasks(generation);
  while (atomic_load_explicit(&pool.completed, memory_order_acquire) < (uint32_t)tasks) BP_RELAX();
  // close the job before its fields can be rewritten: a worker that read (generation, i) with i past this job's
  // tasks, and then the next job's larger task count, must not win its compare-and-swap on the old ticket
  atomic_store(&pool.ticket, ((uint64_t)generation << 32) | UINT32_MAX);
  pthread_mutex_unlock(&pool.submit);
  return 0;
}
