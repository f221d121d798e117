/*
 * churn-floor: the floor of connection churn on this box, for the churn benchmark (churn.ts).
 * N HTTP requests, C at a time, each over a new TCP connection to 127.0.0.1:PORT: socket
 * (non-blocking), connect, one epoll_ctl (edge-triggered IN|OUT: no MOD), write the request when
 * writable, read until the answer is complete (head + Content-Length) or EOF, close. Nothing a
 * client could leave out. Stops after N requests or SECONDS. Prints one JSON line with the
 * process's own CPU (getrusage).
 *
 *   churn-floor PORT N C SECONDS REQUEST   (REQUEST: the bytes to send, with \r\n in them)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  int sent;
  size_t got;
  char buf[4096];
};

static struct sockaddr_in addr;
static const char *req;
static size_t req_len;
static long started, done, errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1: buf holds a whole answer (head, then Content-Length bytes of body). */
static int complete(struct conn *c) {
  c->buf[c->got < sizeof c->buf ? c->got : sizeof c->buf - 1] = 0;
  char *e = strstr(c->buf, "\r\n\r\n");
  if (!e) return 0;
  char *cl = strcasestr(c->buf, "\r\ncontent-length:");
  if (!cl || cl > e) return 0; /* no length: read until EOF */
  return c->got >= (size_t)(e + 4 - c->buf) + strtoul(cl + 17, NULL, 10);
}

static int open_one(int ep, struct conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  c->sent = 0;
  c->got = 0;
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) goto fail;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) goto fail;
  started++;
  return 0;
fail:
  close(c->fd);
  c->fd = -1;
  return -1;
}

/* 1: the exchange ended (answered or failed) and the socket is closed. */
static int on_event(struct conn *c, unsigned ev) {
  if (ev & (EPOLLERR)) goto fail;
  if (!c->sent && (ev & EPOLLOUT)) {
    if (write(c->fd, req, req_len) != (ssize_t)req_len) goto fail;
    c->sent = 1;
  }
  if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) return 0;
  for (;;) {
    ssize_t n = read(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got);
    if (n > 0) {
      c->got += n;
      if (complete(c)) break;
      if (c->got >= sizeof c->buf - 1) goto fail;
      continue;
    }
    if (n == 0) {
      if (!c->got) goto fail;
      break; /* EOF ends an answer without a length */
    }
    if (errno == EAGAIN) return 0;
    goto fail;
  }
  done++;
  close(c->fd);
  c->fd = -1;
  return 1;
fail:
  errors++;
  close(c->fd);
  c->fd = -1;
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s PORT N C SECONDS REQUEST\n", argv[0]);
    return 2;
  }
  long n = atol(argv[2]);
  int conc = atoi(argv[3]);
  double limit = atof(argv[4]);
  req = argv[5];
  req_len = strlen(req);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(atoi(argv[1]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct conn *conns = calloc(conc, sizeof *conns);
  struct epoll_event evs[256];
  double t0 = now(), deadline = t0 + limit;
  int active = 0;
  for (int i = 0; i < conc && started < n; i++) {
    if (open_one(ep, &conns[i]) == 0) active++;
    else errors++;
  }
  while (active > 0) {
    int k = epoll_wait(ep, evs, 256, 1000);
    if (k < 0 && errno != EINTR) break;
    int more = now() < deadline;
    for (int i = 0; i < k; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->fd < 0 || !on_event(c, evs[i].events)) continue;
      active--;
      while (more && started < n) {
        if (open_one(ep, c) == 0) {
          active++;
          break;
        }
        errors++;
      }
    }
    if (k == 0 && !more) break; /* nothing moved for a second past the deadline */
  }
  double wall = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"done\":%ld,\"errors\":%ld,\"stuck\":%d,\"seconds\":%.4f,\"cpuSeconds\":%.4f}\n", done, errors, active, wall, cpu);
  return 0;
}
