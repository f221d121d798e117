/**
 * Helper for kernel-fragments.test.ts, run inside a network namespace with `ip netns exec`:
 *   capture IFACE PORT          the real ring and Decoder on IFACE; prints READY, then one JSON
 *                               line (packets to PORT, counters) after "stop" arrives on stdin
 *   send SRC DST PORT SIZE      one TCP segment of SIZE payload bytes through a raw socket, with
 *                               path MTU discovery off, so the kernel itself cuts it into fragments
 * Every wait is bounded; the capture child stops itself after 30 s.
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PacketRing } from '../../src/capture/ring.js';
import * as libc from '../../src/capture/libc.js';
import { ANOMALIES, SKIPS } from '../../src/decode/anomalies.js';
import { Decoder } from '../../src/decode/decoder.js';
import { ipv4Bytes, ipv6Bytes, tcpSegment, TCP_ACK, TCP_PSH } from '../fixtures/frames.js';

const AF_INET6 = 10;
const IPPROTO_IP = 0;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;
const IP_MTU_DISCOVER = 10;
const IPV6_MTU_DISCOVER = 23;
const PMTUDISC_DONT = 0;

/** The payload a segment of `size` bytes carries (the same on both sides). */
export function payloadOf(size: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff));
}

export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}

async function capture(iface: string, port: number): Promise<void> {
  const dec = new Decoder(port);
  const packets: Array<{ v: number; sport: number; dport: number; seq: number; length: number; sha: string }> = [];
  const ring = new PacketRing({ interface: iface, port, ringMiB: 4, blockKiB: 256 });
  const run = ring.run((buf, off, cap, wire) => {
    const p = dec.decode(buf, off, cap, wire);
    if (!p || p.dstPort !== port) return;
    const payload = p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength);
    packets.push({ v: p.ipVersion, sport: p.srcPort, dport: p.dstPort, seq: p.seq, length: p.payloadLength, sha: sha(payload) });
  });
  await new Promise((r) => setTimeout(r, 100));
  process.stdout.write('READY\n');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l.trim() === 'stop') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  ring.stop();
  await run;
  const nonZero = (names: readonly string[], a: Float64Array) => Object.fromEntries(names.map((n, i) => [n, a[i]]).filter(([, v]) => v));
  const out = {
    packets,
    reassembled: dec.fragments.reassembled,
    anomalies: nonZero(ANOMALIES, dec.counters.anomalies),
    skips: nonZero(SKIPS, dec.counters.skips),
    frames: ring.stats().packets,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

function sockaddr(dst: string): Buffer {
  if (isIPv4(dst)) {
    const a = Buffer.alloc(16);
    a.writeUInt16LE(libc.AF_INET, 0); // sa_family in host order (x86, arm64)
    ipv4Bytes(dst).copy(a, 4);
    return a;
  }
  const a = Buffer.alloc(28);
  a.writeUInt16LE(AF_INET6, 0);
  ipv6Bytes(dst).copy(a, 8);
  return a;
}

function send(src: string, dst: string, port: number, size: number): void {
  const v4 = isIPv4(src);
  const fd = libc.socket(v4 ? libc.AF_INET : AF_INET6, libc.SOCK_RAW | libc.SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) throw libc.syscallError('socket');
  try {
    const off = Buffer.alloc(4);
    off.writeInt32LE(PMTUDISC_DONT, 0);
    const set = v4 ? libc.setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, off, 4) : libc.setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, off, 4);
    if (set !== 0) throw libc.syscallError('setsockopt(MTU_DISCOVER)');
    const pseudo = v4 ? Buffer.concat([ipv4Bytes(src), ipv4Bytes(dst)]) : Buffer.concat([ipv6Bytes(src), ipv6Bytes(dst)]);
    const seg = tcpSegment({ src, dst, sport: 40000, dport: port, seq: 7777, ack: 1, flags: TCP_ACK | TCP_PSH, payload: payloadOf(size) }, pseudo);
    const addr = sockaddr(dst);
    if (Number(libc.sendto(fd, seg, seg.length, 0, addr, addr.length)) !== seg.length) throw libc.syscallError(`sendto(${seg.length})`);
  } finally {
    libc.close(fd);
  }
  process.stdout.write(JSON.stringify({ sent: size }) + '\n');
}

const [mode, ...args] = process.argv.slice(2);
const main = async (): Promise<void> => {
  if (process.argv[1] !== fileURLToPath(import.meta.url) || mode === undefined) return;
  if (mode === 'capture') await capture(args[0], Number(args[1]));
  else if (mode === 'send') send(args[0], args[1], Number(args[2]), Number(args[3]));
  else throw new Error(`unknown mode ${mode}`);
};
main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
