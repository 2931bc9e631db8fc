#ifndef BITPLAN_CHDF5_SHIM_H
#define BITPLAN_CHDF5_SHIM_H
#include <hdf5.h>
// HDF5 exposes these as macros that expand to function calls or casts, which Swift cannot import.
static inline hid_t bitplan_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t bitplan_H5S_ALL(void) { return H5S_ALL; }
static inline unsigned bitplan_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned bitplan_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned bitplan_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned bitplan_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hid_t bitplan_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t bitplan_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t bitplan_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t bitplan_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t bitplan_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t bitplan_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t bitplan_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline size_t bitplan_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t bitplan_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t bitplan_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
// ---------------------------------------------------------------------------------------------------------------
// Checking an untrusted file in a child process. libhdf5 1.10 trusts the metadata it reads: a damaged object
// header or B-tree can make it overrun a buffer (SIGSEGV in memmove, glibc's "free(): invalid size") or loop
// forever. `bitplan_h5_probe_in_child` forks; the child opens the file and reads every attribute and dataset it
// can reach, then `_exit`s; the parent waits at most `timeout_ms` and kills a child that is still running. Only
// C runs in the child (no Swift runtime, no locks other threads may hold but libc's, which fork resets).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { BITPLAN_PROBE_OK = 0, BITPLAN_PROBE_ERROR = 1, BITPLAN_PROBE_CRASHED = 2, BITPLAN_PROBE_TIMEOUT = 3,
       BITPLAN_PROBE_NO_FORK = 4 };

// Reads `n` elements of `type` from an attribute (`is_attr`) or dataset, into memory that is never freed: the
// child exits right after. Refuses more than 1 GiB (a damaged dataspace can claim anything). The buffer is a fresh
// anonymous mapping, not malloc's: malloc may serve it from free space of the heap the child inherited, which
// `RLIMIT_DATA` already counts, so a read could pass the memory limit depending on what the parent's other threads
// had freed (a test saw a 64 MiB dataset read under a 16 MiB limit once).
static inline int bitplan_probe_read(hid_t obj, int is_attr) {
  hid_t type = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
  hid_t space = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
  if (type < 0 || space < 0) return -1;
  hssize_t n = H5Sget_simple_extent_npoints(space);
  size_t size = H5Tget_size(type);
  if (n < 0 || size == 0) return -1;
  if (n == 0) return 0;
  if ((unsigned long long)n > (1ull << 30) / size) return -1;
  void *buffer = mmap(NULL, (size_t)n * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return -1;
  herr_t status = is_attr ? H5Aread(obj, type, buffer)
                          : H5Dread(obj, type, bitplan_H5S_ALL(), bitplan_H5S_ALL(), bitplan_H5P_DEFAULT(), buffer);
  H5Sclose(space);
  H5Tclose(type);
  return status < 0 ? -1 : 0;
}

static inline herr_t bitplan_probe_attribute(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info; (void)data;
  hid_t a = H5Aopen(loc, name, bitplan_H5P_DEFAULT());
  if (a < 0) return -1;
  int status = bitplan_probe_read(a, 1);
  return H5Aclose(a) < 0 || status < 0 ? -1 : 0;
}

static inline int bitplan_probe_object(hid_t object) {
  hsize_t index = 0;
  if (H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, bitplan_probe_attribute, NULL) < 0) return -1;
  if (H5Iget_type(object) == H5I_DATASET && bitplan_probe_read(object, 0) < 0) return -1;
  return 0;
}

static inline herr_t bitplan_probe_link(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  (void)info; (void)data;
  hid_t object = H5Oopen(group, name, bitplan_H5P_DEFAULT());
  if (object < 0) return -1;
  int status = bitplan_probe_object(object);
  return H5Oclose(object) < 0 || status < 0 ? -1 : 0;
}

/// The child's work: 0 when every object, attribute and dataset of `path` could be read and the file closed
/// again (closing matters: a damaged file can corrupt the heap in a way that only `free` at close detects).
static inline int bitplan_h5_probe(const char *path) {
  H5Eset_auto2(bitplan_H5E_DEFAULT(), NULL, NULL);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, bitplan_H5P_DEFAULT());
  if (file < 0) return -1;
  int status = -1;
  hid_t root = H5Oopen(file, "/", bitplan_H5P_DEFAULT());
  if (root >= 0) {
    status = bitplan_probe_object(root);
    if (H5Oclose(root) < 0) status = -1;
  }
  if (status == 0 && H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, bitplan_probe_link, NULL) < 0) status = -1;
  if (H5Fclose(file) < 0) status = -1;
  if (H5close() < 0) status = -1;
  return status;
}

/// The child's data segment and private anonymous mappings in bytes (`VmData` of /proc/self/status: what it
/// inherited from the parent), or 0 when it cannot be read.
static inline unsigned long long bitplan_probe_data_bytes(void) {
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return 0;
  char text[8192];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  for (char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
    if (strncmp(line, "VmData:", 7) == 0) return strtoull(line + 7, NULL, 10) * 1024;  // kB
  return 0;
}

/// Runs `bitplan_h5_probe(path)` in a child process; one of the `BITPLAN_PROBE_` codes. `*signal_number` is the
/// signal that ended a crashed child. With `memory_bytes` > 0 the child may allocate at most that much beyond what
/// it inherited (`RLIMIT_DATA`): a damaged length field (a variable-length string claiming gigabytes) then fails
/// the read instead of filling the machine. Call it while no other thread is inside libhdf5.
static inline int bitplan_h5_probe_in_child(const char *path, int timeout_ms, unsigned long long memory_bytes,
                                            int *signal_number) {
  *signal_number = 0;
  pid_t child = fork();
  if (child < 0) return BITPLAN_PROBE_NO_FORK;
  if (child == 0) {
    if (memory_bytes > 0) {
      const unsigned long long inherited = bitplan_probe_data_bytes();
      struct rlimit limit = {inherited + memory_bytes, inherited + memory_bytes};
      if (inherited > 0) setrlimit(RLIMIT_DATA, &limit);  // without /proc: unlimited, as before
    }
    // Die quietly by the signal: no inherited crash handler (the Swift runtime's prints a backtrace), and glibc's
    // "free(): invalid size" goes nowhere. The parent reports the file in one line.
    int signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) signal(signals[i], SIG_DFL);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) { dup2(devnull, 1); dup2(devnull, 2); }
    _exit(bitplan_h5_probe(path) == 0 ? 0 : 1);
  }
  struct timespec step = {0, 2000000};  // 2 ms
  for (int waited_us = 0;; waited_us += 2000) {
    int status = 0;
    pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) {
      if (WIFEXITED(status)) return WEXITSTATUS(status) == 0 ? BITPLAN_PROBE_OK : BITPLAN_PROBE_ERROR;
      *signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      return BITPLAN_PROBE_CRASHED;
    }
    if (done < 0) return BITPLAN_PROBE_NO_FORK;
    if (waited_us / 1000 >= timeout_ms) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      return BITPLAN_PROBE_TIMEOUT;
    }
    nanosleep(&step, NULL);
  }
}
#endif
