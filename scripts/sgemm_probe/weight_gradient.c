// The backward's weight-gradient products dW = dYᵀ · X of SmolLM2 (30 blocks x q, k, v, o, gate, up, down: 210
// gradients, 425 MB, cycled as in the engine) and the tied table's dE = dzᵀ · n (49152 x 576), each cut as the
// engine cuts it for 2 workers and the pieces run one after the other on one thread: OpenBLAS cblas_sgemm (beta 0,
// BLAS.inPanels' cut) against bp_sgemm_tn (BLAS.inParts' cut). Not part of the build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/weight_gradient.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/weight_gradient -lopenblas -lm -lpthread
//   /tmp/weight_gradient 128; /tmp/weight_gradient 512
#include "../../Sources/CKernels/include/CKernels.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
static int VAR;
// C[m, n] = Aᵀ B, A [k, m] (row stride lda), B [k, n]: ours cut as BLAS.inParts (rows past 256, else columns at panels)
static void ours(size_t m,size_t n,size_t k,const float*a,size_t lda,const float*b,size_t ldb,float*c,size_t ldc){
  size_t nr=bp_packed_sgemm_panel(VAR);
  if(m>256){size_t h=(m+7)/8/2*8; bp_sgemm_tn(VAR,h,n,k,a,lda,b,ldb,0,c,ldc,0,n); bp_sgemm_tn(VAR,m-h,n,k,a+h,lda,b,ldb,0,c+h*ldc,ldc,0,n);}
  else{size_t h=(n+nr-1)/nr/2*nr; bp_sgemm_tn(VAR,m,n,k,a,lda,b,ldb,0,c,ldc,0,h); bp_sgemm_tn(VAR,m,n,k,a,lda,b,ldb,0,c,ldc,h,n);}
}
// OpenBLAS's, cut as BLAS.inPanels (the longer of m and n in two at a multiple of 16)
static void theirs(size_t m,size_t n,size_t k,const float*a,size_t lda,const float*b,size_t ldb,float*c,size_t ldc){
  size_t h=((m>n?m:n)/2)/16*16;
  if(n>=m){cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,m,h,k,1,a,lda,b,ldb,0,c,ldc);cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,m,n-h,k,1,a,lda,b+h,ldb,0,c+h,ldc);}
  else{cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,h,n,k,1,a,lda,b,ldb,0,c,ldc);cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,m-h,n,k,1,a+h,lda,b,ldb,0,c+h*ldc,ldc);}
}
int main(int argc,char**argv){
  openblas_set_num_threads(1); VAR=bp_packed_sgemm_variant();
  size_t T=argc>1?atoi(argv[1]):128;
  size_t sh[7][2]={{576,576},{192,576},{192,576},{576,576},{1536,576},{1536,576},{576,1536}};
  float*g[30][7];
  for(int l=0;l<30;l++)for(int j=0;j<7;j++)g[l][j]=rnd(sh[j][0]*sh[j][1]);
  float*dy=rnd(T*1536),*x=rnd(T*1536);
  double fl=0;for(int j=0;j<7;j++)fl+=2.0*T*sh[j][0]*sh[j][1]*30;
  size_t V=49152,d=576; float*dz=rnd((T-1)*V),*dE=rnd(V*d),*nf=rnd(T*d); double hf=2.0*(T-1)*V*d;
  for(int rep=0;rep<4;rep++){
    double t0=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t o=sh[j][0],i=sh[j][1];theirs(o,i,T,dy,o,x,i,g[l][j],i);}
    double t1=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t o=sh[j][0],i=sh[j][1];ours(o,i,T,dy,o,x,i,g[l][j],i);}
    double t2=now(); theirs(V,d,T-1,dz,V,nf,d,dE,d);
    double t3=now(); ours(V,d,T-1,dz,V,nf,d,dE,d);
    double t4=now();
    printf("T=%zu dW: OpenBLAS %.1f ms (%.1f GFLOP/s), ours %.1f ms (%.1f) | table dE: OpenBLAS %.1f ms (%.1f), ours %.1f ms (%.1f)\n",
      T,(t1-t0)*1e3,fl/(t1-t0)/1e9,(t2-t1)*1e3,fl/(t2-t1)/1e9,(t3-t2)*1e3,hf/(t3-t2)/1e9,(t4-t3)*1e3,hf/(t4-t3)/1e9);
  }
}
