/* kiln_peer_dgemm.c - the yardstick for the cpu gemm: times OpenBLAS cblas_dgemm on n x n
 * matrices holding the same small integers Kiln multiplies, on every core OpenBLAS uses, and prints
 * the best of the runs. Usage: kiln-peer-dgemm N [RUNS]  ->  "dgemm n=N gflops=G best_s=S" */
#include <cblas.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
    const long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2048;
    const int runs = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1 || n > 65536 || runs < 1) {
        fprintf(stderr, "usage: kiln-peer-dgemm N [RUNS]   (1 <= N <= 65536)\n");
        return 2;
    }
    double* a = malloc(sizeof(double) * n * n);
    double* b = malloc(sizeof(double) * n * n);
    double* c = malloc(sizeof(double) * n * n);
    if (!a || !b || !c) {
        fprintf(stderr, "kiln-peer-dgemm: out of memory for n=%ld\n", n);
        return 3;
    }
    for (long i = 0; i < n * n; ++i) {
        a[i] = (double)((i * 7) % 9) - 4.0;
        b[i] = (double)((i * 13) % 9) - 4.0;
        c[i] = 0.0;
    }
    double best = 1e300;
    for (int r = 0; r < runs; ++r) {
        const double t0 = now_seconds();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, a, (int)n, b, (int)n, 0.0, c,
                    (int)n);
        const double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    printf("dgemm n=%ld gflops=%.3f best_s=%.6f\n", n, 2.0 * n * n * (double)n / best / 1e9, best);
    free(a);
    free(b);
    free(c);
    return 0;
}
