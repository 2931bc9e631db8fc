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
#endif
