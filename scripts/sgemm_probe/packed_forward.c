// The forward's linear products of SmolLM2 (30 blocks x q, k, v, o, gate, up, down; 210 different weights, 430 MB,
// cycled as in the engine), one thread: OpenBLAS cblas_sgemm against bp_packed_sgemm on weights packed once, and
// against bp_packed_sgemm_rows (each panel packed just before its sweep: the LM head, perturbed passes).
// Not part of the build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/packed_forward.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/packed_forward -lopenblas -lm
//   /tmp/packed_forward 128; /tmp/packed_forward 512   (a second argument picks the variant: 1 AVX2, 2 AVX-512)
#include "../../Sources/CKernels/include/CKernels.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  size_t T=argc>1?atoi(argv[1]):128; int V=argc>2?atoi(argv[2]):2; int P=bp_packed_sgemm_panel(V);
  size_t sh[7][2]={{576,576},{192,576},{192,576},{576,576},{1536,576},{1536,576},{576,1536}};
  float*w[30][7],*pk[30][7];
  for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t n=sh[j][0],k=sh[j][1];w[l][j]=rnd(n*k);pk[l][j]=aligned_alloc(64,bp_packed_sgemm_size(V,n,k)*4+64);bp_packed_sgemm_pack(V,w[l][j],k,n,k,pk[l][j],0,(n+P-1)/P);}
  float*a=rnd(T*1536),*c=rnd(T*1536);
  double fl=0;for(int j=0;j<7;j++)fl+=2.0*T*sh[j][0]*sh[j][1]*30;
  for(int rep=0;rep<4;rep++){
    double t0=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t n=sh[j][0],k=sh[j][1];cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,T,n,k,1,a,k,w[l][j],k,(j==3||j==6)?1:0,c,n);}
    double t1=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t n=sh[j][0],k=sh[j][1];bp_packed_sgemm(V,T,n,k,a,k,pk[l][j],(j==3||j==6),c,n,0,n);}
    double t2=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t n=sh[j][0],k=sh[j][1];bp_packed_sgemm_rows(V,T,n,k,a,k,w[l][j],k,(j==3||j==6),c,n,0,n);}
    double t3=now();
    printf("T=%zu linear layers: OpenBLAS %.1f ms (%.1f GFLOP/s)  packed %.1f ms (%.1f)  rows %.1f ms (%.1f)\n",T,(t1-t0)*1e3,fl/(t1-t0)/1e9,(t2-t1)*1e3,fl/(t2-t1)/1e9,(t3-t2)*1e3,fl/(t3-t2)/1e9);
  }
}
