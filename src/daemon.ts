/**
 * Wires the parts left to right: capture → decode → reassemble → http (pipeline/stages.ts, in
 * this thread or in workers) → replay, with shadow testing beside the replay and metrics beside
 * everything. The only module that knows all of them; owns the lifecycle and signals.
 *
 * A request's path: PacketRing.run → Stages (decode, reassemble, parse) → replaySink().request
 * below → Replayer.submit (policy chain) → Destination queue → H1Pool socket.
 */
import dns from 'node:dns/promises';
import fs from 'node:fs';
import type http from 'node:http';
import type { Logger } from 'pino';
import { Recorder } from './capture/record.js';
import { ringGeometry, ringShareMiB } from './capture/ring.js';
import { DiffLog } from './compare/difflog.js';
import { Shadow } from './compare/shadow.js';
import type { Config } from './config/config.js';
import { captureOptions, policyOptions, replayOptions, RESTART_ONLY, shadowOptions, type ShadowSetup } from './config/options.js';
import { CaptureError, ConfigError, MirrorReplayError } from './errors.js';
import { rateLimitedWarn } from './log.js';
import { CompareMetrics } from './metrics/compare.js';
import { recordMetrics } from './metrics/record.js';
import { Metrics } from './metrics/registry.js';
import { startMetricsServer } from './metrics/server.js';
import { Health } from './ops/health.js';
import { startHealthPort, type HealthPort } from './ops/health-port.js';
import type { Notifier } from './ops/notify.js';
import { createCapture, type CaptureSink } from './pipeline/capture.js';
import type { Capture, CaptureFault } from './pipeline/stages.js';
import type { DropReason, ReplayObserver } from './replay/outcome.js';
import { rateRuleLabels, Replayer } from './replay/replayer.js';

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
  const metrics = new Metrics(cfg.destinations);
  const replayer = await startReplay(cfg, metrics, log);
  const shadow = cfg.shadow ? startShadow(shadowOptions(cfg.shadow, replayer.destinations.map((d) => d.label)), metrics, log) : null;
  if (shadow && !cfg.pcap && cfg.workers > 1) log.info({ workers: cfg.workers }, 'shadow testing: capture stays in the main thread (--workers applies without --compare)');
  const onFault = (f: CaptureFault): void =>
    log.warn({ err: f.error, interface: f.interface, kind: f.kind, suppressed: f.suppressed }, 'capture: a stage threw and capture carried on (kind handler: the frame was skipped); counted in mirror_replay_capture_errors_total');
  const recorder = cfg.record ? startRecorder(cfg, metrics, log) : null;
  const gate = cfg.pcap !== undefined ? replayGate(replayer, cfg.maxQueue) : undefined;
  const capture = createCapture({ ...captureOptions(cfg), onFault }, replaySink(metrics, replayer, log), shadow, { recorder, recordOnly: cfg.destinations.length === 0, gate });
  metrics.readFrom({ ...capture.probe, destinations: () => replayer.destinations.map((d) => ({ label: d.label, queueDepth: d.queueDepth, inFlight: d.inFlight })) });
  const health = new Health(capture.loops);
  const servers = await startServers(cfg, metrics, health, log);
  const running = new Running(cfg, log, { capture, replayer, shadow, recorder, metrics, health, servers, notifier: opts.notifier });
  await running.start();
  return {
    metrics,
    done: running.done,
    stop: () => running.stop(),
    metricsAddress: () => {
      const a = servers.metrics?.address();
      return a && typeof a === 'object' ? { host: a.address, port: a.port } : null;
    },
    health: health.readiness,
    failure: () => running.failure,
    reload: (next: Config) => {
      const changed = RESTART_ONLY.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(cfg[k]));
      if (changed.length) log.warn({ changed }, 'reload: these settings take effect only after a restart');
      replayer.reconfigure(policyOptions(next));
      metrics.rateRules(rateRuleLabels(next));
      log.info('reload: replay policy replaced');
    },
  };
}

/** The replay: destinations resolved (and checked against the service), failures counted and logged at a bounded rate. */
async function startReplay(cfg: Config, metrics: Metrics, log: Logger): Promise<Replayer> {
  const destinationAddresses = await resolveDestinations(cfg.destinations, cfg.serviceAddresses);
  const warn = rateLimitedWarn(log);
  const observer: ReplayObserver = {
    dropped: metrics.dropped.bind(metrics),
    replayed: metrics.replayed.bind(metrics),
    altered: metrics.altered.bind(metrics),
    copied: metrics.copied.bind(metrics),
    rateLimited: metrics.rateLimited.bind(metrics),
    error: (destination, code) => {
      metrics.error(destination, code);
      warn(`${destination}|${code}`, { destination, code }, 'replay failed');
    },
  };
  metrics.rateRules(rateRuleLabels(cfg));
  return new Replayer({ ...replayOptions(cfg), destinationAddresses }, observer, (flow) =>
    warn(`loop|${flow.serverAddr}|${flow.serverPort}`, { server: `${flow.serverAddr}:${flow.serverPort}` }, 'captured traffic goes to a destination: replaying it would loop; dropping (reason loop)'),
  );
}

/** --record: the directory made if need be, the recorder and its metrics; write failures logged at a bounded rate. */
function startRecorder(cfg: Config, metrics: Metrics, log: Logger): Recorder {
  const r = cfg.record!;
  try {
    fs.mkdirSync(r.dir, { recursive: true });
    fs.accessSync(r.dir, fs.constants.W_OK);
  } catch (e) {
    throw new CaptureError(`--record ${r.dir}: cannot write there: ${(e as Error).message}`, undefined, { cause: e });
  }
  const warn = rateLimitedWarn(log);
  // The snap length is the ring's: frames are never longer.
  const rec = new Recorder({ ...r, snapLen: 262144 }, (reason, err) => warn(`record|${reason}`, { reason, err: err.message, dir: r.dir }, 'recording: frames not written (counted in mirror_replay_record_frames_dropped_total)'));
  recordMetrics(metrics.registry, () => rec.counters, () => rec.buffered);
  log.info({ dir: r.dir, maxFileBytes: r.maxFileBytes, maxFileMs: r.maxFileMs, maxFiles: r.maxFiles, gzip: r.gzip, only: cfg.destinations.length === 0 }, 'recording captured frames');
  return rec;
}

/**
 * Reading files, the destinations set the pace: reading waits while a destination's queue is half
 * full (at most 1024 requests), so --speed 0 means as fast as they answer, not queue_full drops.
 */
function replayGate(replayer: Replayer, maxQueue: number): () => Promise<void> | null {
  const limit = Math.max(1, Math.min(1024, Math.floor(maxQueue / 2)));
  const busy = () => replayer.destinations.some((d) => d.queueDepth >= limit);
  return () => {
    if (!busy()) return null;
    return new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (busy()) return;
        clearInterval(t);
        resolve();
      }, 1);
    });
  };
}

/** Shadow testing: the stage, its metrics and its diff log. */
function startShadow(o: ShadowSetup, metrics: Metrics, log: Logger): Shadow {
  const s = o.stage;
  const candidates = s.destinations.filter((_, i) => i !== s.baseline);
  const diffLog = o.diffLog ? new DiffLog(o.diffLog.path, o.diffLog) : null;
  const shadow = new Shadow(s, new CompareMetrics(metrics.registry, candidates, s.routes), diffLog, log);
  log.info({ compared: candidates, baseline: s.baseline >= 0 ? s.destinations[s.baseline] : null, diffLog: o.diffLog?.path ?? null, routes: s.routes }, 'shadow testing: comparing answers with production');
  return shadow;
}

/** Where the stages hand requests in the main thread (directly, or from the workers' hand-off): counted, then replayed. */
function replaySink(metrics: Metrics, replayer: Replayer, log: Logger): CaptureSink {
  return {
    request: (req, flow, answers) => {
      metrics.parsed(req.h2 ? 'h2' : 'h1');
      return replayer.submit(req, flow, answers);
    },
    dropped: (reason, requests, skippedBytes, flow) => {
      if (requests > 0) metrics.dropped(reason as DropReason, requests);
      if (skippedBytes > 0) metrics.skippedBytes(reason, skippedBytes);
      if (requests > 0 && flow) log.debug({ reason, requests, client: `${flow.clientAddr}:${flow.clientPort}` }, 'request not replayed');
    },
    // Lost between threads because replay fell behind: every destination lost it, as when its queue is full.
    overflow: (n) => replayer.destinations.forEach((d) => metrics.dropped('queue_full', n, d.label)),
  };
}

interface Servers {
  metrics: http.Server | null;
  healthPort: HealthPort | null;
}

/** /metrics, /healthz and /readyz; the NLB health-check port. */
async function startServers(cfg: Config, metrics: Metrics, health: Health, log: Logger): Promise<Servers> {
  const servers: Servers = { metrics: null, healthPort: null };
  try {
    if (cfg.metricsPort > 0) {
      servers.metrics = await startMetricsServer(metrics.registry, cfg.metricsHost, cfg.metricsPort, health.liveness, health.readiness);
      log.info({ address: servers.metrics.address() }, 'metrics listening on /metrics, /healthz and /readyz');
    }
    if (cfg.healthCheckPort > 0) servers.healthPort = await startHealthPort(cfg.metricsHost, cfg.healthCheckPort, () => health.readiness().ok);
  } catch (e) {
    await closeServer(servers.metrics);
    throw e;
  }
  return servers;
}

interface Parts {
  capture: Capture;
  replayer: Replayer;
  shadow: Shadow | null;
  recorder: Recorder | null;
  metrics: Metrics;
  health: Health;
  servers: Servers;
  notifier: Notifier | undefined;
}

/** The daemon from its first frame to its exit code: ready, stop, drain. */
class Running {
  failure: Error | null = null;
  readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;
  private ended: Promise<Array<Error | null>> = Promise.resolve([]);
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
    private readonly p: Parts,
  ) {
    this.done = new Promise<number>((r) => (this.resolveDone = r));
  }

  async start(): Promise<void> {
    const { capture, health } = this.p;
    this.ended = capture.run();
    const names = [...new Set(capture.loops.map((s) => s.name))];
    this.log.info({ sources: names, workers: capture.workers, port: this.cfg.port, destinations: this.cfg.destinations, ring: this.cfg.pcap ? undefined : describeRing(this.cfg, capture.workers) }, 'capturing');
    if ((await capture.bound()) && !health.stopping) await this.ready(names);
    // A capture that ends by itself: a pcap at end of file, or a ring that failed.
    void this.ended.then((errs) => this.endedByItself(errs));
  }

  private async ready(names: string[]): Promise<void> {
    const { capture, health, servers, notifier } = this.p;
    health.ready = true;
    await servers.healthPort?.refresh().catch((e: unknown) => this.log.error({ err: e, port: this.cfg.healthCheckPort }, 'health-check port could not listen'));
    notifier?.send(`READY=1\nSTATUS=capturing on ${names.join(', ')}${capture.workers > 1 ? ` (${capture.workers} workers each)` : ''}`);
    const every = notifier?.watchdogIntervalMs;
    // Only a loop that makes progress is alive: a stuck loop misses pings and systemd restarts us.
    if (every) this.watchdog = setInterval(() => health.readiness().ok && notifier!.send('WATCHDOG=1'), every);
  }

  async stop(): Promise<void> {
    if (this.p.health.stopping) return this.done.then(() => undefined);
    this.p.health.stopping = true;
    this.p.capture.stop();
    const errs = await this.ended;
    await this.finish(errs.some((e) => e) ? 1 : 0);
  }

  private async endedByItself(errs: Array<Error | null>): Promise<void> {
    const { health, capture } = this.p;
    if (health.stopping) return;
    for (const [i, e] of errs.entries()) {
      if (!e) continue;
      this.failure ??= e;
      this.p.metrics.failure((e as { code?: string }).code);
      // Before READY a known failure (no interface, no CAP_NET_RAW) is the caller's one-line message.
      if (health.ready || !(e instanceof MirrorReplayError)) this.log.error({ err: e, source: capture.loops[i].name, code: (e as { code?: string }).code }, 'capture failed');
    }
    health.stopping = true;
    await this.finish(errs.some((e) => e) ? 1 : 0, this.cfg.pcap ? fileDrainMs(this.cfg) : this.cfg.drainTimeoutMs);
  }

  /** Capture has ended: close the flows (partial requests counted), drain the replay, close the rest. */
  private async finish(code: number, drainMs = this.cfg.drainTimeoutMs): Promise<void> {
    const { capture, replayer, shadow, recorder, servers, notifier } = this.p;
    notifier?.send('STOPPING=1');
    clearInterval(this.watchdog);
    await servers.healthPort?.close();
    capture.close();
    await recorder?.close();
    await replayer.drain(drainMs);
    shadow?.close();
    await closeServer(servers.metrics);
    this.resolveDone(code);
  }
}

/**
 * A file run that reached its end waits for every replay to be answered or to time out, so the
 * last answers are counted and compared (offline shadow testing) before the report: a full queue
 * empties in at most its depth ÷ concurrency rounds of --timeout. SIGTERM keeps --drain-timeout.
 */
function fileDrainMs(cfg: Config): number {
  return Math.min(2 ** 31 - 1, Math.max(cfg.drainTimeoutMs, cfg.timeoutMs * (Math.ceil(cfg.maxQueue / cfg.maxConcurrency) + 2)));
}

function closeServer(s: http.Server | null): Promise<void> {
  return s ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve();
}

/**
 * Every address each destination resolves to, for the loop guard; refuses a destination that
 * is the mirrored service itself (--service-address).
 */
async function resolveDestinations(destinations: string[], serviceAddresses: string[]): Promise<string[][]> {
  const service = new Set(serviceAddresses);
  return Promise.all(
    destinations.map(async (d) => {
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
function describeRing(cfg: Config, workers: number): Record<string, number> {
  const g = ringGeometry(ringShareMiB(cfg.ringMiB, workers, cfg.ringBlockKiB), cfg.ringBlockKiB, cfg.ringBlockTimeoutMs);
  // Below blockBytes ÷ timeout of traffic per ring, blocks leave partly filled and the ring holds blocks × timeout.
  return { blocks: g.blocks, blockKiB: g.blockBytes / 1024, blockTimeoutMs: g.retireMs, lowRateStallSeconds: g.lowRateDepthMs / 1000 };
}
