// The backward's input gradients dX = dY · W of SmolLM2 at T tokens (its 210 linear weights, W [out, in] as it lies,
// and the LM head's dX = dz · E over the 49152-row table), one thread: OpenBLAS cblas_sgemm against bp_sgemm_nn.
// Not part of the build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/input_gradient.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/input_gradient -lopenblas -lm -lpthread
//   /tmp/input_gradient 128; /tmp/input_gradient 512   (a second argument picks the variant: 1 AVX2, 2 AVX-512)
#include "../../Sources/CKernels/include/CKernels.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  size_t T=argc>1?atoi(argv[1]):128; int V=argc>2?atoi(argv[2]):2;
  size_t sh[7][2]={{576,576},{192,576},{192,576},{576,576},{1536,576},{1536,576},{576,1536}}; // W [out, in]
  float*w[30][7]; for(int l=0;l<30;l++)for(int j=0;j<7;j++)w[l][j]=rnd(sh[j][0]*sh[j][1]);
  float*e=rnd(49152*576),*dz=rnd(T*49152);
  float*dy=rnd(T*1536),*dx=rnd(T*1536);
  double fl=0;for(int j=0;j<7;j++)fl+=2.0*T*sh[j][0]*sh[j][1]*30; double fh=2.0*(T-1)*49152*576;
  for(int rep=0;rep<4;rep++){
    double t0=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t out=sh[j][0],in=sh[j][1];cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,T,in,out,1,dy,out,w[l][j],in,(j==1||j==2||j==5)?1:0,dx,in);}
    double t1=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t out=sh[j][0],in=sh[j][1];bp_sgemm_nn(V,T,in,out,dy,out,w[l][j],in,(j==1||j==2||j==5),dx,in,0,in);}
    double t2=now();
    cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,T-1,576,49152,1,dz,49152,e,576,0,dx,576);
    double t3=now();
    bp_sgemm_nn(V,T-1,576,49152,dz,49152,e,576,0,dx,576,0,576);
    double t4=now();
    printf("T=%zu dX of 210 layers: OpenBLAS %.1f ms (%.0f GF/s)  nn %.1f ms (%.0f)   head dX: OpenBLAS %.1f ms (%.0f)  nn %.1f ms (%.0f)\n",T,(t1-t0)*1e3,fl/(t1-t0)/1e9,(t2-t1)*1e3,fl/(t2-t1)/1e9,(t3-t2)*1e3,fh/(t3-t2)/1e9,(t4-t3)*1e3,fh/(t4-t3)/1e9);
  }
}
