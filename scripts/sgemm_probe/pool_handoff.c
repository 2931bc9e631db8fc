// The hand-off between threads: SmolLM2's 210 forward products at T tokens on one thread, then split by columns
// over two threads that meet at a spinning barrier (no sleeping between products), with GFLOP/s per kind of layer
// (q, k, v, o, gate, up, down). The engine's forward through libdispatch reached about 193 GFLOP/s on the same
// products where this reached 260 (Xeon family 6 model 207, T = 128): the cost of waking a sleeping thread for every
// product, which CKernels' thread_pool.c removes. Not part of the build. From the repository root:
//   clang -O2 -march=native -w -I Sources/CKernels/include -I Sources/CKernels scripts/sgemm_probe/pool_handoff.c \
//     Sources/CKernels/sgemm_packed.c Sources/CKernels/cpu_features.c -o /tmp/pool_handoff -lm -lpthread
//   /tmp/pool_handoff 128; /tmp/pool_handoff 512
#include "../../Sources/CKernels/include/CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *rnd(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/2147483648.0f-0.5f;return p;}
size_t sh[7][2]={{576,576},{192,576},{192,576},{576,576},{1536,576},{1536,576},{576,1536}};
float*w[30][7],*pk[30][7]; float*a,*c; size_t T; int V,P;
atomic_int go=0, done=0; int job=-1;
static void part(int id,int l,int j){size_t n=sh[j][0],k=sh[j][1];size_t panels=(n+P-1)/P;size_t p0=id*panels/2,p1=(id+1)*panels/2;size_t j1=p1*P<n?p1*P:n;
  bp_packed_sgemm(V,T,n,k,a,k,pk[l][j],(j==3||j==6),c,n,p0*P,j1);}
static void*worker(void*x){int seen=0;for(;;){while(atomic_load_explicit(&go,memory_order_acquire)==seen);seen++;int jb=job;if(jb<0)return 0;part(1,jb/7,jb%7);atomic_fetch_add(&done,1);}}
int main(int argc,char**argv){
  T=argc>1?atoi(argv[1]):128; V=2; P=bp_packed_sgemm_panel(V);
  for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t n=sh[j][0],k=sh[j][1];w[l][j]=rnd(n*k);pk[l][j]=aligned_alloc(64,bp_packed_sgemm_size(V,n,k)*4+64);bp_packed_sgemm_pack(V,w[l][j],k,n,k,pk[l][j],0,(n+P-1)/P);}
  a=rnd(T*1536);c=rnd(T*1536);
  double fl[7]={0},ft=0;for(int j=0;j<7;j++){fl[j]=2.0*T*sh[j][0]*sh[j][1]*30;ft+=fl[j];}
  pthread_t th;pthread_create(&th,0,worker,0);
  for(int rep=0;rep<4;rep++){
    double t0=now();
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){size_t n=sh[j][0],k=sh[j][1];bp_packed_sgemm(V,T,n,k,a,k,pk[l][j],(j==3||j==6),c,n,0,n);}
    double t1=now(); double tj[7]={0};
    for(int l=0;l<30;l++)for(int j=0;j<7;j++){double s=now();job=l*7+j;int d0=atomic_load(&done);atomic_fetch_add_explicit(&go,1,memory_order_release);part(0,l,j);while(atomic_load(&done)==d0);tj[j]+=now()-s;}
    double t2=now();
    printf("T=%zu 1 thread %.1f ms (%.1f GFLOP/s)  2 threads spin %.1f ms (%.1f)  per kind GF/s:",T,(t1-t0)*1e3,ft/(t1-t0)/1e9,(t2-t1)*1e3,ft/(t2-t1)/1e9);
    for(int j=0;j<7;j++)printf(" %.0f",fl[j]/tj[j]/1e9);printf("\n");
  }
}
