// A random busy wait of up to ~2000 loop turns (scripts/sgemm_probe/pool_stress.c).
static inline void pool_stress_delay(void) {
  static _Thread_local unsigned r = 1;
  r = r * 1103515245u + 12345u;
  for (volatile unsigned d = 0; d < (r >> 20) % 2000; d++) {}
}
