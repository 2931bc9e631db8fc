// SmolLM2's 210 input gradients dX = dY · W at T tokens (bp_sgemm_nn, W [out, in] read where it lies) on one thread,
// then on two threads that meet at a spinning barrier, C cut by columns at panel edges (as BLAS.inParts cuts it up
// to 256 rows) and by rows. A second argument shifts every weight that many floats past a 64-byte boundary: malloc's
// large blocks start 16 bytes (4 floats) into a cache line, which is why the engine's buffers are allocated on a
// 64-byte boundary (Buffer.allocate). Not part of the build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/input_gradient_split.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/input_gradient_split -lm -lpthread
//   /tmp/input_gradient_split 128 0; /tmp/input_gradient_split 128 4
#include "../../Sources/CKernels/include/CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
size_t sh[7][2]={{576,576},{192,576},{192,576},{576,576},{1536,576},{1536,576},{576,1536}};
float*w[30][7]; float*a,*c; size_t T; int V=2,P; int mode;
atomic_int go=0, done=0; int job=-1;
static void part(int id,int l,int j){size_t out=sh[j][0],in=sh[j][1];
  if(mode==0){size_t panels=(in+P-1)/P;size_t p0=id*panels/2,p1=(id+1)*panels/2;size_t j1=p1*P<in?p1*P:in;
    bp_sgemm_nn(V,T,in,out,a,out,w[l][j],in,0,c,in,p0*P,j1);}
  else {size_t tiles=(T+7)/8; size_t i0=id*tiles/2*8, i1=(id+1)*tiles/2*8; if(i1>T)i1=T;
    bp_sgemm_nn(V,i1-i0,in,out,a+i0*out,out,w[l][j],in,0,c+i0*in,in,0,in);}}
static void*worker(void*x){int seen=0;for(;;){while(atomic_load_explicit(&go,memory_order_acquire)==seen);seen++;int jb=job;if(jb<0)return 0;part(1,jb/7,jb%7);atomic_fetch_add(&done,1);}}
int main(int argc,char**argv){
  T=argc>1?atoi(argv[1]):128; P=bp_packed_sgemm_panel(V);
  int mis=argc>2?atoi(argv[2]):0; for(int l=0;l<30;l++)for(int j=0;j<7;j++){w[l][j]=rnd(sh[j][0]*sh[j][1]+16)+mis;}
  a=rnd(T*1536);c=rnd(T*1536);
  double ft=0;for(int j=0;j<7;j++){ft+=2.0*T*sh[j][0]*sh[j][1]*30;}
  pthread_t th;pthread_create(&th,0,worker,0);
  for(int rep=0;rep<4;rep++){
    double t0=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t out=sh[j][0],in=sh[j][1];bp_sgemm_nn(V,T,in,out,a,out,w[l][j],in,0,c,in,0,in);}
    double t1=now(), tt[2];
    for(mode=0;mode<2;mode++){double s=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){job=l*7+j;int d0=atomic_load(&done);atomic_fetch_add_explicit(&go,1,memory_order_release);part(0,l,j);while(atomic_load(&done)==d0);}
    tt[mode]=now()-s;}
    printf("T=%zu dX: 1 thread %.1f ms (%.0f GF/s); 2 threads by columns %.1f ms (%.0f), by rows %.1f ms (%.0f)\n",T,(t1-t0)*1e3,ft/(t1-t0)/1e9,tt[0]*1e3,ft/tt[0]/1e9,tt[1]*1e3,ft/tt[1]/1e9);
  }
}
