// Stands in for Sources/CKernels/include/CKernels.h when the probe compiles sgemm_avx2.c on its own.
#include <stddef.h>
