/**
 * Wires the stages left to right: capture → decode → reassemble → http → replay, with metrics
 * beside them. The only module that knows all of them; owns the lifecycle and signals.
 */
import dns from 'node:dns/promises';
import type http from 'node:http';
import type { Logger } from 'pino';
import { PacketRing, ringGeometry, ringShareMiB } from './capture/ring.js';
import { PcapFileSource } from './capture/pcap.js';
import { captureClock, type FrameHandler, type FrameSource } from './capture/source.js';
import type { Config } from './config/config.js';
import { Decoder } from './decode/decoder.js';
import { HttpRequestParser } from './http/parser.js';
import { DEFAULT_HTTP_LIMITS, type HttpDropReason, type HttpParserLimits, type HttpRequest } from './http/types.js';
import { captureByInterface, CaptureWorkers } from './pipeline/workers.js';
import type { FlowInfo } from './reassemble/stream.js';
import { Metrics } from './metrics/registry.js';
import { startMetricsServer } from './metrics/server.js';
import type { DropReason } from './replay/outcome.js';
import { Replayer, type ReplayOptions } from './replay/replayer.js';
import { FlowTable } from './reassemble/table.js';
import { ConfigError, MirrorReplayError } from './errors.js';
import { rateLimitedWarn } from './log.js';
import { startHealthPort, type HealthPort } from './ops/health-port.js';
import type { Notifier } from './ops/notify.js';
import { responseSegments, startShadow } from './compare/setup.js';
import type { RequestSide } from './compare/shadow.js';

const SWEEP_MS = 250;
/** A capture loop that has not polled or walked a block for this long is stuck. */
const STALE_MS = 5_000;

export interface Daemon {
  metrics: Metrics;
  /** Resolves with the exit code once the daemon has stopped (pcap done, or stop() called). */
  done: Promise<number>;
  /** Stop capturing, close flows (partial requests counted), drain replays within the timeout. */
  stop(): Promise<void>;
  /** The metrics server's address, when it listens. */
  metricsAddress(): { host: string; port: number } | null;
  /** The error that ended capture, if one did (e.g. the interface vanished). */
  failure(): Error | null;
  /** Same as /readyz: capture bound, every loop making progress, not stopping. */
  health(): { ok: boolean; detail: string };
  /** SIGHUP: swap the replay policy for `next`'s; flows, queues and connections stay. Throws ConfigError. */
  reload(next: Config): void;
}

export interface DaemonOptions {
  /** Told READY=1, WATCHDOG=1 (while healthy) and STOPPING=1. */
  notifier?: Notifier;
}

export async function startDaemon(cfg: Config, log: Logger, opts: DaemonOptions = {}): Promise<Daemon> {
  const notifier = opts.notifier;
  const limits: HttpParserLimits = { ...DEFAULT_HTTP_LIMITS, maxBodyBytes: cfg.maxBodyBytes };
  const tableOptions = { port: cfg.port, maxFlowBufferBytes: cfg.maxFlowBufferBytes, memcapBytes: cfg.memcapBytes, holeTimeoutMs: cfg.holeTimeoutMs, idleTimeoutMs: cfg.idleTimeoutMs };
  // --workers N: capture through parsing in N threads per interface; requests come back here to replay.
  // Shadow testing pairs both directions of a connection in one place, so it captures here.
  const pool = !cfg.pcap && cfg.workers > 1 && !cfg.shadow
    ? new CaptureWorkers({ interfaces: cfg.interfaces, workers: cfg.workers, port: cfg.port, ringMiB: cfg.ringMiB, ringBlockKiB: cfg.ringBlockKiB, ringBlockTimeoutMs: cfg.ringBlockTimeoutMs, table: tableOptions, limits }, {
        request: (req, info) => requestParsed(req, info),
        dropped: (reason, requests, skippedBytes) => requestDropped(reason, requests, skippedBytes),
        // Lost between threads because replay fell behind: every destination lost it, as when its queue is full.
        overflow: (n) => replayer.destinations.forEach((d) => metrics.dropped('queue_full', n, d.label)),
      })
    : null;
  if (!cfg.pcap && cfg.workers > 1 && cfg.shadow) log.info({ workers: cfg.workers }, 'shadow testing: capture stays in the main thread (--workers applies without --compare)');
  const sources: FrameSource[] = cfg.pcap
    ? [new PcapFileSource(cfg.pcap)]
    : pool?.sources ?? cfg.interfaces.map((i) => new PacketRing({
        interface: i,
        port: cfg.port,
        ringMiB: cfg.ringMiB,
        blockKiB: cfg.ringBlockKiB,
        retireMs: cfg.ringBlockTimeoutMs,
        bothDirections: cfg.shadow !== undefined,
        // The ring was full: flows whose holes open now lost them to the kernel (stream_gap_kernel_drop).
        onLoss: () => {
          table.captureLoss(now);
          responses?.captureLoss(now);
        },
      }));
  const decoders = sources.map(() => new Decoder(cfg.port));

  let table: FlowTable;
  const metrics: Metrics = new Metrics(cfg.destinations, {
    capture: () => captureByInterface(sources),
    decodeAnomalies: () => sumArrays(decoders.map((d) => d.counters.anomalies)),
    decodeSkips: () => sumArrays(decoders.map((d) => d.counters.skips)),
    reassemblyEvents: () => table.events,
    flowsOpen: () => table.openFlows,
    reassemblyHeldBytes: () => table.heldBytes,
    httpBufferedBytes: () => table.sinkBytes(),
    ...pool?.probe,
    destinations: () => replayer.destinations.map((d) => ({ label: d.label, queueDepth: d.queueDepth, inFlight: d.inFlight })),
  });

  const destinationAddresses = await resolveDestinations(cfg);
  const warn = rateLimitedWarn(log);
  const observer = {
    dropped: metrics.dropped.bind(metrics),
    replayed: metrics.replayed.bind(metrics),
    altered: metrics.altered.bind(metrics),
    error: (destination: string, code: string) => {
      metrics.error(destination, code);
      warn(`${destination}|${code}`, { destination, code }, 'replay failed');
    },
  };
  const replayer = new Replayer({ ...replayOptions(cfg), destinationAddresses }, observer, (flow) =>
    warn(`loop|${flow.serverAddr}|${flow.serverPort}`, { server: `${flow.serverAddr}:${flow.serverPort}` }, 'captured traffic goes to a destination: replaying it would loop; dropping (reason loop)'),
  );

  const shadowing = cfg.shadow ? startShadow(cfg, metrics, replayer.destinations.map((d) => d.label), tableOptions, log) : null;
  function requestParsed(req: HttpRequest, info: FlowInfo, side?: RequestSide | null): void {
    metrics.parsedTotal.inc();
    if (side) side.request(req, (answers) => replayer.submit(req, info, answers));
    else replayer.submit(req, info);
  }
  function requestDropped(reason: HttpDropReason, requests: number, skippedBytes: number, info?: FlowInfo, side?: RequestSide | null): void {
    if (requests > 0) side?.dropped(requests);
    if (requests > 0) metrics.dropped(reason as DropReason, requests);
    if (skippedBytes > 0) metrics.skippedBytes(reason, skippedBytes);
    if (requests > 0 && info) log.debug({ reason, requests, client: `${info.clientAddr}:${info.clientPort}` }, 'request not replayed');
  }
  table = new FlowTable(tableOptions, (info, midstream) => {
    let side: RequestSide | null = null;
    const parser = new HttpRequestParser(
      {
        onRequest: (req) => requestParsed(req, info, side),
        onDrop: (reason, requests, skippedBytes) => requestDropped(reason, requests, skippedBytes, info, side),
      },
      limits,
      { midstream },
    );
    const paired = shadowing?.shadow.requestSide(info, midstream, parser);
    if (!paired) return parser;
    side = paired.side;
    return paired.sink;
  });
  const responses = shadowing?.responses ?? null;

  // One clock read per sweep, not per packet: reassembly timeouts are coarse anyway.
  let now = Date.now();
  const onFrames = decoders.map((dec): FrameHandler => (buf, off, cap, wire, link) => {
    const p = dec.decode(buf, off, cap, wire, link);
    if (p) {
      table.onPacket(p, now);
      if (responses) responses.onPacket(p, now);
    }
  });
  const sweep = setInterval(() => {
    now = captureClock(sources, now);
    for (const dec of decoders) dec.sweep(now);
    table.sweep(now);
    if (responses) {
      responses.sweep(now);
      shadowing!.shadow.tick(now, responseSegments(responses));
    }
  }, SWEEP_MS);

  let server: http.Server | null = null;
  let ready = false;
  let stopping = false;
  // Per source, so one stuck loop among several interfaces is noticed.
  const lastProgress = sources.map((s) => s.progress());
  const lastProgressAt = sources.map(() => Date.now());
  const healthy = () => {
    const t = Date.now();
    let stuck: string | null = null;
    sources.forEach((s, i) => {
      const p = s.progress();
      if (p !== lastProgress[i]) {
        lastProgress[i] = p;
        lastProgressAt[i] = t;
      } else if (t - lastProgressAt[i] > STALE_MS) stuck ??= s.name;
    });
    if (stopping) return { ok: false, detail: 'stopping' };
    if (!ready) return { ok: false, detail: 'starting' };
    if (stuck) return { ok: false, detail: `capture loop on ${stuck} is not making progress` };
    return { ok: true, detail: 'ok' };
  };
  // Liveness: only a stuck capture loop is fatal; starting and draining are alive.
  const alive = () => {
    const h = healthy();
    return h.ok || h.detail === 'starting' || h.detail === 'stopping' ? { ok: true, detail: h.detail } : h;
  };
  let healthPort: HealthPort | null = null;
  try {
    if (cfg.metricsPort > 0) {
      server = await startMetricsServer(metrics.registry, cfg.metricsHost, cfg.metricsPort, alive, healthy);
      log.info({ address: server.address() }, 'metrics listening on /metrics, /healthz and /readyz');
    }
    if (cfg.healthCheckPort > 0) healthPort = await startHealthPort(cfg.metricsHost, cfg.healthCheckPort, () => healthy().ok);
  } catch (e) {
    clearInterval(sweep);
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    throw e;
  }

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  let failed = false;
  let firstFailure: Error | null = null;
  const runs = sources.map((s, i) =>
    s.run(onFrames[i]).then(
      () => null,
      (e: unknown) => {
        failed = true;
        return e as Error;
      },
    ),
  );
  const names = [...new Set(sources.map((s) => s.name))];
  log.info({ sources: names, workers: pool ? cfg.workers : 1, port: cfg.port, destinations: cfg.destinations, ring: cfg.pcap ? undefined : describeRing(cfg, pool !== null) }, 'capturing');

  // run() opens the socket, filter, ring and bind before its first await, so once every source
  // has had a turn without failing, capture is bound. Workers say so once their rings are bound.
  await pool?.bound;
  await new Promise((r) => setImmediate(r));
  let watchdog: NodeJS.Timeout | undefined;
  if (!failed && !stopping) {
    ready = true;
    await healthPort?.refresh().catch((e: unknown) => log.error({ err: e, port: cfg.healthCheckPort }, 'health-check port could not listen'));
    notifier?.send(`READY=1\nSTATUS=capturing on ${names.join(', ')}${pool ? ` (${cfg.workers} workers each)` : ''}`);
    const every = notifier?.watchdogIntervalMs;
    // Only a loop that makes progress is alive: a stuck loop misses pings and systemd restarts us.
    if (every) watchdog = setInterval(() => healthy().ok && notifier!.send('WATCHDOG=1'), every);
  }

  const finish = async (code: number) => {
    notifier?.send('STOPPING=1');
    clearInterval(watchdog);
    await healthPort?.close();
    clearInterval(sweep);
    now = Date.now();
    for (const dec of decoders) dec.closeAll();
    table.closeAll(now);
    responses?.closeAll(now);
    await replayer.drain(cfg.drainTimeoutMs);
    shadowing?.shadow.close();
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
    for (const [i, e] of errs.entries()) {
      if (!e) continue;
      firstFailure ??= e;
      // Before READY a known failure (no interface, no CAP_NET_RAW) is the caller's one-line message.
      if (ready || !(e instanceof MirrorReplayError)) log.error({ err: e, source: sources[i].name, code: (e as { code?: string }).code }, 'capture failed');
    }
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
    health: healthy,
    failure: () => firstFailure,
    reload: (next: Config) => {
      const changed = RESTART_ONLY.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(cfg[k]));
      if (changed.length) log.warn({ changed }, 'reload: these settings take effect only after a restart');
      replayer.reconfigure(policyOptions(next));
      log.info('reload: replay policy replaced');
    },
  };
}

/** Settings SIGHUP does not apply: they size or bind something that lives as long as the process. */
const RESTART_ONLY = ['shadow', 'destinations', 'interfaces', 'pcap', 'port', 'metricsHost', 'metricsPort', 'healthCheckPort', 'maxConcurrency', 'maxQueue', 'maxQueueBytes', 'timeoutMs', 'ringMiB', 'ringBlockKiB', 'ringBlockTimeoutMs', 'workers', 'maxBodyBytes', 'maxFlowBufferBytes', 'memcapBytes', 'serviceAddresses', 'tlsInsecure'] as const satisfies ReadonlyArray<keyof Config>;

function replayOptions(cfg: Config): ReplayOptions {
  return {
    destinations: cfg.destinations,
    ...policyOptions(cfg),
    maxConcurrency: cfg.maxConcurrency,
    maxQueue: cfg.maxQueue,
    maxQueueBytes: cfg.maxQueueBytes,
    timeoutMs: cfg.timeoutMs,
    tlsInsecure: cfg.tlsInsecure,
  };
}

/** The policy part of the config: what SIGHUP may reload. */
export function policyOptions(cfg: Config) {
  return {
    keepHost: cfg.keepHostHeader,
    sampling: { percentage: cfg.percentage, by: cfg.percentageBy, header: cfg.percentageByHeader },
    rate: cfg.rate,
    filters: cfg.filters,
    rewrites: cfg.rewrites,
    markHeader: cfg.markHeader,
  };
}

/**
 * Every address each destination resolves to, for the loop guard; refuses a destination that
 * is the mirrored service itself (--service-address).
 */
async function resolveDestinations(cfg: Config): Promise<string[][]> {
  const service = new Set(cfg.serviceAddresses);
  return Promise.all(
    cfg.destinations.map(async (d) => {
      const host = new URL(d).hostname.replace(/^\[|\]$/g, '');
      let addrs: string[];
      try {
        addrs = (await dns.lookup(host, { all: true })).map((a) => a.address);
      } catch {
        addrs = [host]; // unresolvable now: replays will count connect_error, not stop startup
      }
      const hit = addrs.find((a) => service.has(a));
      if (hit) throw new ConfigError(`--destination ${d} is the mirrored service itself (${hit}): its replays would be mirrored again, forever`);
      return addrs;
    }),
  );
}

/** Each ring's geometry, for the startup log: what a stall costs is the operator's to judge. */
function describeRing(cfg: Config, split: boolean): Record<string, number> {
  const g = ringGeometry(split ? ringShareMiB(cfg.ringMiB, cfg.workers, cfg.ringBlockKiB) : cfg.ringMiB, cfg.ringBlockKiB, cfg.ringBlockTimeoutMs);
  // Below blockBytes ÷ timeout of traffic per ring, blocks leave partly filled and the ring holds blocks × timeout.
  return { blocks: g.blocks, blockKiB: g.blockBytes / 1024, blockTimeoutMs: g.retireMs, lowRateStallSeconds: g.lowRateDepthMs / 1000 };
}

function sumArrays(arrs: Float64Array[]): Float64Array {
  if (arrs.length === 1) return arrs[0];
  const out = new Float64Array(arrs[0].length);
  for (const a of arrs) for (let i = 0; i < a.length; i++) out[i] += a[i];
  return out;
}
