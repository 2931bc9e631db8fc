#ifndef BITPLAN_CBLAS_SHIM_H
#define BITPLAN_CBLAS_SHIM_H
#include <cblas.h>
// OpenBLAS' thread control, declared in its cblas.h; re-exported here so Swift sees one module.
#endif
