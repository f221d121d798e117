/**
 * Wires the stages left to right: capture → decode → reassemble → http → replay, with metrics
 * beside them. The only module that knows all of them; owns the lifecycle and signals.
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import { PacketRing } from './capture/ring.js';
import { PcapFileSource } from './capture/pcap.js';
import type { FrameSource } from './capture/source.js';
import type { Config } from './config/config.js';
import { Decoder } from './decode/decoder.js';
import { HttpRequestParser } from './http/parser.js';
import { DEFAULT_HTTP_LIMITS, type HttpParserLimits } from './http/types.js';
import { Metrics } from './metrics/registry.js';
import { startMetricsServer } from './metrics/server.js';
import type { DropReason } from './replay/outcome.js';
import { Replayer } from './replay/replayer.js';
import { FlowTable } from './reassemble/table.js';

const SWEEP_MS = 250;

export interface Daemon {
  metrics: Metrics;
  /** Resolves with the exit code once the daemon has stopped (pcap done, or stop() called). */
  done: Promise<number>;
  /** Stop capturing, close flows (partial requests counted), drain replays within the timeout. */
  stop(): Promise<void>;
  /** The metrics server's address, when it listens. */
  metricsAddress(): { host: string; port: number } | null;
}

export async function startDaemon(cfg: Config, log: Logger): Promise<Daemon> {
  const sources: FrameSource[] = cfg.pcap
    ? [new PcapFileSource(cfg.pcap)]
    : cfg.interfaces.map((i) => new PacketRing({ interface: i, port: cfg.port, ringMiB: cfg.ringMiB }));
  const decoders = sources.map(() => new Decoder(cfg.port));

  let table: FlowTable;
  const metrics: Metrics = new Metrics(cfg.destinations, {
    capture: () => {
      const t = { packets: 0, bytes: 0, kernelDrops: 0, kernelFreezes: 0, truncated: 0 };
      for (const s of sources) {
        const x = s.stats();
        t.packets += x.packets; t.bytes += x.bytes; t.kernelDrops += x.kernelDrops; t.kernelFreezes += x.kernelFreezes; t.truncated += x.truncated;
      }
      return t;
    },
    decodeAnomalies: () => sumArrays(decoders.map((d) => d.counters.anomalies)),
    decodeSkips: () => sumArrays(decoders.map((d) => d.counters.skips)),
    reassemblyEvents: () => table.events,
    flowsOpen: () => table.openFlows,
    reassemblyHeldBytes: () => table.heldBytes,
    httpBufferedBytes: () => table.sinkBytes(),
    destinations: () => replayer.destinations.map((d) => ({ label: d.label, queueDepth: d.queueDepth, inFlight: d.inFlight })),
  });

  const replayer = new Replayer(
    {
      destinations: cfg.destinations,
      keepHost: cfg.keepHostHeader,
      sampling: { percentage: cfg.percentage, by: cfg.percentageBy, header: cfg.percentageByHeader },
      maxConcurrency: cfg.maxConcurrency,
      maxQueue: cfg.maxQueue,
      maxQueueBytes: cfg.maxQueueBytes,
      timeoutMs: cfg.timeoutMs,
    },
    metrics,
  );

  const limits: HttpParserLimits = { ...DEFAULT_HTTP_LIMITS, maxBodyBytes: cfg.maxBodyBytes };
  table = new FlowTable(
    { port: cfg.port, maxFlowBufferBytes: cfg.maxFlowBufferBytes, memcapBytes: cfg.memcapBytes, holeTimeoutMs: cfg.holeTimeoutMs, idleTimeoutMs: cfg.idleTimeoutMs },
    (info, midstream) =>
      new HttpRequestParser(
        {
          onRequest: (req) => {
            metrics.parsedTotal.inc();
            replayer.submit(req, info);
          },
          onDrop: (reason, requests, skippedBytes) => {
            if (requests > 0) metrics.dropped(reason as DropReason, requests);
            if (skippedBytes > 0) metrics.skippedBytes(reason, skippedBytes);
            if (requests > 0) log.debug({ reason, requests, client: `${info.clientAddr}:${info.clientPort}` }, 'request not replayed');
          },
        },
        limits,
        { midstream },
      ),
  );

  // One clock read per sweep, not per packet: reassembly timeouts are coarse anyway.
  let now = Date.now();
  const onFrames = decoders.map((dec) => (buf: Uint8Array, off: number, cap: number, wire: number) => {
    const p = dec.decode(buf, off, cap, wire);
    if (p) table.onPacket(p, now);
  });
  const sweep = setInterval(() => {
    now = Date.now();
    table.sweep(now);
  }, SWEEP_MS);

  let server: http.Server | null = null;
  let lastProgress = sources.map((s) => s.progress());
  let lastProgressAt = Date.now();
  const healthy = () => {
    const p = sources.map((s) => s.progress());
    if (p.some((v, i) => v !== lastProgress[i])) {
      lastProgress = p;
      lastProgressAt = Date.now();
    }
    const stale = Date.now() - lastProgressAt > 5_000;
    return { ok: !stopping && !stale, detail: stopping ? 'stopping' : stale ? 'capture loop is not making progress' : 'ok' };
  };
  if (cfg.metricsPort > 0) {
    server = await startMetricsServer(metrics.registry, cfg.metricsHost, cfg.metricsPort, healthy);
    log.info({ address: server.address() }, 'metrics listening on /metrics and /healthz');
  }

  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const runs = sources.map((s, i) =>
    s.run(onFrames[i]).then(
      () => null,
      (e: unknown) => e as Error,
    ),
  );
  log.info({ sources: sources.map((s) => s.name), port: cfg.port, destinations: cfg.destinations }, 'capturing');

  const finish = async (code: number) => {
    clearInterval(sweep);
    now = Date.now();
    table.closeAll(now);
    await replayer.drain(cfg.drainTimeoutMs);
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    resolveDone(code);
  };

  const stop = async () => {
    if (stopping) return done.then(() => undefined);
    stopping = true;
    for (const s of sources) s.stop();
    const errs = await Promise.all(runs);
    await finish(errs.some((e) => e) ? 1 : 0);
  };

  // A source that ends by itself: a pcap at end of file, or a ring that failed.
  void Promise.all(runs).then(async (errs) => {
    if (stopping) return;
    for (const [i, e] of errs.entries()) if (e) log.error({ err: e, source: sources[i].name, code: (e as { code?: string }).code }, 'capture failed');
    stopping = true;
    await finish(errs.some((e) => e) ? 1 : 0);
  });

  return {
    metrics,
    done,
    stop,
    metricsAddress: () => {
      const a = server?.address();
      return a && typeof a === 'object' ? { host: a.address, port: a.port } : null;
    },
  };
}

function sumArrays(arrs: Float64Array[]): Float64Array {
  if (arrs.length === 1) return arrs[0];
  const out = new Float64Array(arrs[0].length);
  for (const a of arrs) for (let i = 0; i < a.length; i++) out[i] += a[i];
  return out;
}
