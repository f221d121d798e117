/**
 * A capture worker thread: one ring in a PACKET_FANOUT group, its own decoder, flow table and
 * HTTP parsers. Complete requests and drops go to the main thread in batches (handoff.ts); the
 * counters follow every SWEEP_MS. On "stop" it stops the ring, closes its flows (partial requests
 * are counted), posts the last batch and counters, then "ended": nothing it parsed is posted after.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PacketRing } from '../capture/ring.js';
import { captureClock } from '../capture/source.js';
import { Decoder } from '../decode/decoder.js';
import { HttpRequestParser } from '../http/parser.js';
import type { HttpParserLimits } from '../http/types.js';
import { FlowTable, type TableOptions } from '../reassemble/table.js';
import { HandoffWriter } from './handoff.js';
import type { ErrorInfo, WorkerMessage, WorkerStats } from './workers.js';

const SWEEP_MS = 250;

export interface CaptureWorkerSetup {
  interface: string;
  /** 'new': create the group (the first worker of an interface); a number: join it. */
  fanout: number | 'new';
  port: number;
  ringMiB: number;
  ringBlockKiB: number;
  ringBlockTimeoutMs: number;
  table: Partial<TableOptions> & { port: number };
  limits: HttpParserLimits;
  /** The hand-off bound, shared with the main thread and the other workers. */
  budget: Int32Array;
}

function errorInfo(e: unknown): ErrorInfo {
  const err = e as { name?: string; message?: string; code?: string; errno?: number; stack?: string };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), code: err?.code, errno: err?.errno, stack: err?.stack };
}

async function main(): Promise<void> {
  const port = parentPort!;
  const setup = workerData as CaptureWorkerSetup;
  const out = new HandoffWriter((b, transfer) => port.postMessage(b, transfer), setup.budget);
  const decoder = new Decoder(setup.port);
  const table = new FlowTable(setup.table, (info, midstream) =>
    new HttpRequestParser(
      {
        onRequest: (req) => out.request(req, info),
        onDrop: (reason, requests, skippedBytes) => out.dropped(reason, requests, skippedBytes),
      },
      setup.limits,
      { midstream },
    ),
  );
  let ring: PacketRing;
  try {
    ring = new PacketRing({
      interface: setup.interface,
      port: setup.port,
      ringMiB: setup.ringMiB,
      blockKiB: setup.ringBlockKiB,
      retireMs: setup.ringBlockTimeoutMs,
      fanoutGroup: setup.fanout,
      blockingPoll: true,
      onLoss: () => table.captureLoss(Math.max(now, Date.now())), // see daemon.ts
    });
  } catch (e) {
    port.postMessage({ type: 'bound', fanout: -1 } satisfies WorkerMessage);
    port.postMessage({ type: 'ended', error: errorInfo(e) } satisfies WorkerMessage);
    port.close();
    return;
  }

  let now = Date.now();
  const stats = (): WorkerStats => ({
    type: 'stats',
    capture: ring.stats(),
    progress: ring.progress(),
    anomalies: decoder.counters.anomalies,
    skips: decoder.counters.skips,
    events: table.events,
    openFlows: table.openFlows,
    heldBytes: table.heldBytes,
    sinkBytes: table.sinkBytes(),
  });
  const sweep = setInterval(() => {
    now = captureClock([ring], now);
    decoder.sweep(now);
    table.sweep(now);
    port.postMessage(stats());
  }, SWEEP_MS);

  const run = ring.run((buf, off, cap, wire) => {
    const p = decoder.decode(buf, off, cap, wire);
    if (p) table.onPacket(p, now);
  });
  port.on('message', (m: { type: string }) => {
    if (m.type === 'stop') ring.stop();
  });
  // run() opens the socket, filter, ring, bind and fanout before its first await.
  await new Promise((r) => setImmediate(r));
  port.postMessage({ type: 'bound', fanout: ring.fanoutId } satisfies WorkerMessage);

  let error: ErrorInfo | undefined;
  try {
    await run;
  } catch (e) {
    error = errorInfo(e);
  }
  clearInterval(sweep);
  decoder.closeAll();
  table.closeAll(Date.now());
  out.flush();
  port.postMessage(stats());
  port.postMessage({ type: 'ended', error } satisfies WorkerMessage);
  port.close();
}

main().catch((e: unknown) => {
  // A bug: let the main thread see it as the worker's 'error' event.
  setImmediate(() => {
    throw e;
  });
});
