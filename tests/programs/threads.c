#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 20

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long total = 0;
static int pipefd[2];
static const char *path;
static volatile unsigned long spins;

static void *worker(void *arg) {
    int id = (int)(long)arg;
    int fd = open(path, O_RDONLY);
    char buf[64];
    for (int r = 0; r < ROUNDS; r++) {
        int n = pread(fd, buf, sizeof buf - 1, (r * THREADS + id) * 7 % 200);
        if (n < 0) n = 0;
        buf[n] = 0;
        for (int k = 0; k < n; k++) if (buf[k] == '\n') buf[k] = '_';
        unsigned char rnd;
        getrandom(&rnd, 1, 0);
        pthread_mutex_lock(&lock);
        total += buf[0] + rnd;
        char line[128];
        int len = snprintf(line, sizeof line, "t%d r%d %.8s %u\n", id, r, buf, rnd);
        write(pipefd[1], line, len);
        pthread_mutex_unlock(&lock);
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    path = argv[1];
    if (pipe(pipefd) != 0) return 1;
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    /* A "what if" replay with TRACER_SPIN set waits here for ever, in
       user space, for something that never comes. */
    if (getenv("TRACER_SPIN"))
        for (;;) spins++;
    /* With TRACER_DIVERGE set it makes a syscall the recording does not
       have. */
    if (getenv("TRACER_DIVERGE"))
        getppid();
    FILE *in = fdopen(pipefd[0], "r");
    char line[256];
    for (int i = 0; i < THREADS * ROUNDS && fgets(line, sizeof line, in); i++)
        printf("saw %s", line);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("total %ld\n", total);
    return 0;
}
