/**
 * Helper for fanout.test.ts, run inside a network namespace with `ip netns exec`:
 *   capture IFACE PORT   a server on PORT; rings A and B in one new PACKET_FANOUT group and C in
 *                        another (it sees everything); prints READY, then one JSON line of what
 *                        each ring saw per client port after "stop" arrives on stdin
 *   client HOST PORT N   N TCP connections to PORT, 32 KiB each, all at once
 * Every wait is bounded; the capture child stops itself after 30 s.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PacketRing } from '../../src/capture/ring.js';

/**
 * Frames of the test's connections per client port, and how many others the ring let through:
 * the filter keeps IPv6 frames with extension headers (it cannot see their ports), so the link's
 * own MLD reports arrive too, at times of their own, and rings opened a moment apart differ in them.
 */
function perFlow(port: number): { flows: Record<number, number>; frames: number; others: number; onFrame: (b: Uint8Array, o: number, c: number) => void } {
  const seen = { flows: {} as Record<number, number>, frames: 0, others: 0, onFrame: (b: Uint8Array, o: number): void => {
    const tcp = o + 14 + (b[o + 14] & 0xf) * 4;
    if (((b[o + 12] << 8) | b[o + 13]) !== 0x0800 || b[o + 23] !== 6 || ((b[tcp + 2] << 8) | b[tcp + 3]) !== port) {
      seen.others++;
      return;
    }
    const sport = (b[tcp] << 8) | b[tcp + 1];
    seen.frames++;
    seen.flows[sport] = (seen.flows[sport] ?? 0) + 1;
  } };
  return seen;
}

async function capture(iface: string, port: number): Promise<void> {
  const server = net.createServer((s) => s.on('data', () => {}).on('error', () => {})).listen(port, '0.0.0.0');
  const a = new PacketRing({ interface: iface, port, ringMiB: 4, blockKiB: 256, fanoutGroup: 'new' });
  const sa = perFlow(port);
  const runs = [a.run(sa.onFrame)];
  // The group exists once run() has had its first turn.
  const b = new PacketRing({ interface: iface, port, ringMiB: 4, blockKiB: 256, fanoutGroup: a.fanoutId });
  const c = new PacketRing({ interface: iface, port, ringMiB: 4, blockKiB: 256, fanoutGroup: 'new' });
  const sb = perFlow(port);
  const sc = perFlow(port);
  runs.push(b.run(sb.onFrame), c.run(sc.onFrame));
  const settled = Promise.allSettled(runs);
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
  for (const r of [a, b, c]) r.stop();
  const results = await settled;
  server.close();
  const ring = (r: PacketRing, s: ReturnType<typeof perFlow>) => ({ fanoutId: r.fanoutId, frames: s.frames, others: s.others, flows: s.flows, stats: r.stats() });
  process.stdout.write(`${JSON.stringify({
    runs: results.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r as PromiseRejectedResult).reason))),
    a: ring(a, sa),
    b: ring(b, sb),
    c: ring(c, sc),
  })}\n`);
  process.exit(0);
}

async function client(host: string, port: number, n: number): Promise<void> {
  const one = () => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcp timed out')), 10_000);
    const s = net.connect(port, host, () => s.end(Buffer.alloc(32 * 1024, 0x61)));
    s.on('error', reject).on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    s.resume();
  });
  await Promise.all(Array.from({ length: n }, one));
  process.stdout.write(`${JSON.stringify({ connections: n })}\n`);
}

const [mode, ...args] = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url) && mode !== undefined) {
  const run = mode === 'capture' ? capture(args[0], Number(args[1])) : mode === 'client' ? client(args[0], Number(args[1]), Number(args[2])) : Promise.reject(new Error(`unknown mode ${mode}`));
  run.catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
