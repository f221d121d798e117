/*
 * vxlan-flood: pushes VXLAN-encapsulated TCP frames at a mirror target, as AWS Traffic Mirroring
 * would, for the capture benchmark (test/bench/capture.ts compiles it with gcc at bench time).
 *
 *   vxlan-flood DST_IP SECONDS PPS FLOWS SPORT_BASE [FRAME_BYTES]
 *     DST_IP      the adapter (UDP port 4789)
 *     SECONDS     how long to send (bounded: at most 60)
 *     PPS         target datagrams per second; 0 = as fast as the machine allows
 *     FLOWS       client connections, interleaved (each starts with a SYN, then one request
 *                 head announcing a body far over --max-body-bytes, then body segments in order)
 *     SPORT_BASE  first client port (vary it between runs so flows are new)
 *     FRAME_BYTES inner Ethernet frame size (default 1500)
 *
 * Each UDP datagram is an 8-byte VXLAN header (flags 0x08, VNI 1) and one inner frame:
 * Ethernet / IPv4 (checksummed) / TCP to port 80 (checksum left 0: the daemon does not verify it,
 * as AWS mirrors frames before the NIC fills checksums in). Sends with sendmmsg in batches.
 * Prints one JSON line: {"sent":N,"seconds":S,"errors":E}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define VXLAN_PORT 4789
#define MAX_FRAME 9000

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t ip_checksum(const uint8_t *p, int len) {
  uint32_t s = 0;
  for (int i = 0; i < len; i += 2) s += (p[i] << 8) | p[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

struct flow {
  uint32_t seq;
  int state; /* 0: SYN next, 1: request head next, 2: body */
};

/* Writes datagram `d` for `f` (flow number `fi`); returns its length. */
static int build(uint8_t *d, int frame_bytes, struct flow *f, int fi, int sport_base) {
  static const char head[] = "POST /flood HTTP/1.1\r\nHost: prod\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000000000\r\n\r\n";
  memset(d, 0, 8 + 54);
  d[0] = 0x08; /* VXLAN flags: VNI valid */
  d[6] = 1;    /* VNI 1 (bytes 4..6) */
  uint8_t *e = d + 8;
  memcpy(e, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
  uint8_t *ip = e + 14;
  int payload = 0;
  uint8_t flags = 0x18; /* ACK|PSH */
  if (f->state == 0) {
    flags = 0x02;
  } else {
    payload = frame_bytes - 54;
  }
  int tot = 20 + 20 + payload;
  ip[0] = 0x45;
  ip[2] = tot >> 8;
  ip[3] = tot & 0xff;
  ip[6] = 0x40; /* DF */
  ip[8] = 64;
  ip[9] = 6;
  ip[12] = 10; ip[13] = 213; ip[14] = (fi >> 8) & 0xff; ip[15] = 1 + (fi & 0x7f);
  ip[16] = 10; ip[17] = 213; ip[18] = 1; ip[19] = 2;
  uint16_t ck = ip_checksum(ip, 20);
  ip[10] = ck >> 8;
  ip[11] = ck & 0xff;
  uint8_t *tcp = ip + 20;
  int sport = sport_base + fi;
  tcp[0] = sport >> 8; tcp[1] = sport & 0xff;
  tcp[2] = 0; tcp[3] = 80;
  uint32_t seq = f->seq;
  tcp[4] = seq >> 24; tcp[5] = seq >> 16; tcp[6] = seq >> 8; tcp[7] = seq;
  tcp[11] = 1;
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  tcp[14] = 0xff; tcp[15] = 0xff;
  uint8_t *pl = tcp + 20;
  if (f->state == 0) {
    f->seq += 1;
    f->state = 1;
  } else if (f->state == 1) {
    int h = (int)sizeof(head) - 1;
    memcpy(pl, head, h);
    memset(pl + h, 'a', payload - h);
    f->seq += payload;
    f->state = 2;
  } else {
    memset(pl, 'b', payload);
    f->seq += payload;
  }
  return 8 + 14 + tot;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s DST_IP SECONDS PPS FLOWS SPORT_BASE [FRAME_BYTES]\n", argv[0]);
    return 2;
  }
  double seconds = atof(argv[2]);
  double pps = atof(argv[3]);
  int flows = atoi(argv[4]);
  int sport_base = atoi(argv[5]);
  int frame_bytes = argc > 6 ? atoi(argv[6]) : 1500;
  if (seconds <= 0 || seconds > 60 || flows < 1 || flows > 30000 || sport_base < 1024 || sport_base + flows > 65535 || frame_bytes < 200 || frame_bytes > MAX_FRAME) {
    fprintf(stderr, "%s: argument out of range (SECONDS 0-60, FLOWS 1-30000, SPORT_BASE+FLOWS <= 65535, FRAME_BYTES 200-%d)\n", argv[0], MAX_FRAME);
    return 2;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) { perror("socket"); return 1; }
  int sndbuf = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(VXLAN_PORT) };
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
  if (connect(s, (struct sockaddr *)&dst, sizeof dst) < 0) { perror("connect"); return 1; }

  struct flow *fl = calloc(flows, sizeof *fl);
  for (int i = 0; i < flows; i++) fl[i].seq = 0x10000000u + (uint32_t)i * 104729u + (uint32_t)time(NULL);
  static uint8_t bufs[BATCH][8 + MAX_FRAME];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long long sent = 0, errors = 0;
  int next = 0;
  /* SYNs first, so that every flow starts as a connection, not a midstream pickup. */
  double t0 = now(), end = t0 + seconds;
  while (1) {
    double t = now();
    if (t >= end) break;
    if (pps > 0) {
      double due = (t - t0) * pps;
      if (sent >= due) {
        double wait = (sent - due) / pps;
        if (wait > 0.0002) {
          struct timespec ts = { 0, (long)(wait * 1e9) };
          nanosleep(&ts, NULL);
        }
        continue;
      }
    }
    int n = BATCH;
    if (pps > 0) {
      double due = (t - t0) * pps - sent;
      if (due < n) n = due < 1 ? 1 : (int)due;
    }
    for (int i = 0; i < n; i++) {
      iov[i].iov_len = build(bufs[i], frame_bytes, &fl[next], next, sport_base);
      next = (next + 1) % flows;
    }
    int r = sendmmsg(s, msgs, n, 0);
    if (r < 0) {
      if (errno == ENOBUFS || errno == EAGAIN) { errors++; continue; }
      perror("sendmmsg");
      return 1;
    }
    sent += r;
  }
  printf("{\"sent\":%lld,\"seconds\":%.3f,\"errors\":%lld}\n", sent, now() - t0, errors);
  return 0;
}
