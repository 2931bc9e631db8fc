// The backward's weight-gradient products dW = dYᵀ · X of SmolLM2 at one window (30 blocks x q, k, v, o, gate, up,
// down: 210 gradients, each written into its own array, 425 MB in all, as `LlamaModel.gradients` writes them) on
// one thread through bp_sgemm_tn, with ordinary stores (flags 0) and with non-temporal ones (BP_GEMM_STREAM), each
// with the arrays on a cache line (offset 0) and 48 bytes past one (offset 12 floats: where a large Swift array's
// elements start). First checks that the streamed stores give the same bits at every offset 0..15. Not part of the
// build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/weight_gradient_stream.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/weight_gradient_stream -lm -lpthread
//   /tmp/weight_gradient_stream 128   (a second argument picks the variant: 1 AVX2, 2 AVX-512)
#include "../../Sources/CKernels/include/CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
int main(int argc,char**argv){
  int VAR=argc>2?atoi(argv[2]):bp_packed_sgemm_variant();
  size_t T=argc>1?atoi(argv[1]):128;
  if(!bp_packed_sgemm_runnable(VAR)){fprintf(stderr,"this CPU cannot run variant %d\n",VAR);return 1;}
  if(T>BP_PACKED_KC){fprintf(stderr,"T must be at most %d (one k block)\n",BP_PACKED_KC);return 1;}
  size_t sh[7][2]={{576,576},{192,576},{192,576},{576,576},{1536,576},{1536,576},{576,1536}};
  float*g[210];
  for(int l=0;l<210;l++)g[l]=rnd(1536*576+64);
  float*dy=rnd(T*1536),*x=rnd(T*1536);
  double fl=0;for(int j=0;j<7;j++)fl+=2.0*T*sh[j][0]*sh[j][1]*30;
  for(int off=0;off<16;off++){float*c1=rnd(1536*576+64),*c2=rnd(1536*576+64);
    bp_sgemm_tn(VAR,1536,576,T,dy,1536,x,576,0,c1+off,576,0,576);
    bp_sgemm_tn(VAR,1536,576,T,dy,1536,x,576,BP_GEMM_STREAM,c2+off,576,0,576);
    if(memcmp(c1+off,c2+off,1536*576*4)){printf("streamed stores differ at offset %d\n",off);return 1;}
    free(c1);free(c2);}
  for(int rep=0;rep<3;rep++) for(int flags=0;flags<=BP_GEMM_STREAM;flags+=BP_GEMM_STREAM) for(int off=0;off<16;off+=12){
    double t0=now(); int q=0;
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t o=sh[j][0],i=sh[j][1];
      bp_sgemm_tn(VAR,o,i,T,dy,o,x,i,flags,g[q++]+off,i,0,i);}
    double t1=now();
    printf("variant %d, T=%zu %s stores, C %2d floats past a line: %.1f ms (%.1f GFLOP/s)\n",VAR,T,flags?"non-temporal":"ordinary",off,(t1-t0)*1e3,fl/(t1-t0)/1e9);
  }
}
