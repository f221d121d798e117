/**
 * Helper for faults.test.ts, run inside a network namespace with `ip netns exec`:
 *   capture IFACE PORT   an HTTP server on PORT; the real ring and stages on IFACE, their replay
 *                        sink throwing on every request; prints READY, then on "stop" one JSON line:
 *                        the requests that threw, the faults reported, and the /metrics text
 * Every wait is bounded: the child stops itself after 30 s.
 */
import http from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PacketRing } from '../../src/capture/ring.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/http/types.js';
import { Metrics } from '../../src/metrics/registry.js';
import { faultReporter, Stages, ThreadCapture, type CaptureFault, type RequestSink } from '../../src/pipeline/stages.js';

async function capture(iface: string, port: number): Promise<void> {
  const server = http.createServer((_q, s) => s.end('ok')).listen(port, '0.0.0.0');
  let thrown = 0;
  const sink: RequestSink = {
    request: () => {
      thrown++;
      throw new Error(`replay bug #${thrown}`);
    },
    dropped: () => {},
  };
  const stages = new Stages({ table: { port }, limits: DEFAULT_HTTP_LIMITS }, sink);
  const faults: CaptureFault[] = [];
  const ring = new PacketRing({ interface: iface, port, ringMiB: 4, blockKiB: 1024, retireMs: 10, onError: faultReporter(iface, (f) => faults.push(f), 60_000) });
  const cap = new ThreadCapture([ring], stages);
  const metrics = new Metrics([], undefined, { defaultMetrics: false });
  metrics.readFrom({ ...cap.probe, destinations: () => [] });
  const ended = cap.run();
  const before = await metrics.registry.metrics();
  await new Promise((r) => setTimeout(r, 100));
  process.stdout.write('READY\n');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l.trim() !== 'stop') return;
      clearTimeout(timer);
      resolve();
    });
  });
  cap.stop();
  const errs = await ended;
  cap.close();
  server.close();
  const out = {
    runs: errs.map((e) => (e ? String(e) : 'ok')),
    thrown,
    faults: faults.map((f) => ({ interface: f.interface, kind: f.kind, message: (f.error as Error).message, suppressed: f.suppressed })),
    handlerErrors: ring.stats().handlerErrors,
    before,
    after: await metrics.registry.metrics(),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

const [mode, ...args] = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url) && mode === 'capture') {
  capture(args[0], Number(args[1])).catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
