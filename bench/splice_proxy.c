/* A reference for bench/chaos_proxy.py: a TCP relay in C with no Python at all.
 *
 * Blocking splice through a pipe, one thread per direction of each connection: what relaying
 * costs in the kernel alone, to set the fault proxy's figures against.
 *
 *     splice_proxy LISTEN_PORT UPSTREAM_PORT      (both on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn { int client, upstream, ends; pthread_mutex_t lock; };
struct pair { struct conn *c; int src, dst; };

static void release(struct conn *c) {
    pthread_mutex_lock(&c->lock);
    int last = --c->ends == 0;
    pthread_mutex_unlock(&c->lock);
    if (last) {
        close(c->client);
        close(c->upstream);
        free(c);
    }
}

static void *pump(void *arg) {
    struct pair p = *(struct pair *)arg;
    free(arg);
    int pipefd[2];
    if (pipe(pipefd) < 0) {
        shutdown(p.dst, SHUT_WR);
        release(p.c);
        return NULL;
    }
    fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 18);
    for (;;) {
        ssize_t n = splice(p.src, NULL, pipefd[1], NULL, 1 << 18, SPLICE_F_MOVE);
        if (n <= 0) break;
        while (n > 0) {
            ssize_t m = splice(pipefd[0], NULL, p.dst, NULL, n, SPLICE_F_MOVE);
            if (m <= 0) goto out;
            n -= m;
        }
    }
out:
    shutdown(p.dst, SHUT_WR);
    close(pipefd[0]);
    close(pipefd[1]);
    release(p.c);
    return NULL;
}

static void start(struct conn *c, int src, int dst) {
    struct pair *p = malloc(sizeof *p);
    p->c = c;
    p->src = src;
    p->dst = dst;
    pthread_t t;
    pthread_create(&t, NULL, pump, p);
    pthread_detach(t);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_PORT\n", argv[0]); return 2; }
    int one = 1, lsock = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(lsock, (struct sockaddr *)&a, sizeof a) < 0 || listen(lsock, 128) < 0) { perror("listen"); return 1; }
    struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &up.sin_addr);
    for (;;) {
        int c = accept(lsock, NULL, NULL);
        if (c < 0) continue;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(u, (struct sockaddr *)&up, sizeof up) < 0) { close(c); close(u); continue; }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *both = malloc(sizeof *both);
        both->client = c;
        both->upstream = u;
        both->ends = 2;
        pthread_mutex_init(&both->lock, NULL);
        start(both, c, u);
        start(both, u, c);
    }
}
