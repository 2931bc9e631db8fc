// The LM head's product at T tokens (m = T − 1 rows, SmolLM2's tied table [49152, 576]), half its columns as one of
// two workers takes them, one thread: OpenBLAS cblas_sgemm, bp_packed_sgemm_rows (the table as it lies, each panel
// packed just before its sweep, as the engine runs it) and bp_packed_sgemm on the table packed once. Not part of the
// build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/head.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/head -lopenblas -lm -lpthread
//   /tmp/head 127; /tmp/head 511
#include "../../Sources/CKernels/include/CKernels.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  size_t m=argc>1?atoi(argv[1]):127, n=49152, k=576; int V=2, P=bp_packed_sgemm_panel(V);
  float*w=rnd(n*k),*a=rnd(m*k),*c=rnd(m*n);
  float*pk=aligned_alloc(64,bp_packed_sgemm_size(V,n,k)*4+64); bp_packed_sgemm_pack(V,w,k,n,k,pk,0,(n+P-1)/P);
  double fl=2.0*m*n*k;
  for(int r=0;r<3;r++){
    // half the columns, as one of two workers
    double t0=now(); cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,m,n/2,k,1,a,k,w,k,0,c,n);
    double t1=now(); bp_packed_sgemm_rows(V,m,n,k,a,k,w,k,0,c,n,0,n/2);
    double t2=now(); bp_packed_sgemm(V,m,n,k,a,k,pk,0,c,n,0,n/2);
    double t3=now();
    printf("m=%zu half head: OpenBLAS %.1f ms (%.0f GF/s)  rows %.1f ms (%.0f)  prepacked %.1f ms (%.0f)\n",m,(t1-t0)*1e3,fl/2/(t1-t0)/1e9,(t2-t1)*1e3,fl/2/(t2-t1)/1e9,(t3-t2)*1e3,fl/2/(t3-t2)/1e9);
  }
}
