import os from 'node:os';
import type { RecordOptions } from '../capture/record.js';
import { DEFAULT_BLOCK_KIB, DEFAULT_RETIRE_MS, DEFAULT_RING_MIB, MAX_RETIRE_MS, ringShareMiB } from '../capture/ring.js';
import { ConfigError } from '../errors.js';
import { isToken } from '../http/grammar.js';
import { parseDestination } from '../replay/destination.js';
import { buildFilter, type FilterOptions } from '../replay/filters.js';
import { parseMarker } from '../replay/loop.js';
import { buildRewriter, type RewriteOptions } from '../replay/rewrite.js';
import { parseCopyMarker } from '../replay/amplify.js';
import { parseRouteRates } from '../replay/ratelimit.js';
import { MAX_PERCENTAGE, type PercentageBy } from '../replay/sampling.js';
import { parseJsonPath } from '../compare/json.js';
import { compileRoutes } from '../compare/routes.js';

/** Everything the daemon needs, typed and validated once at startup. */
export interface Config {
  destinations: string[];
  /** The service port whose client-to-server traffic is replayed (--filter-request-port). */
  port: number;
  percentage: number;
  percentageBy: PercentageBy;
  percentageByHeader: string | undefined;
  keepHostHeader: boolean;
  interfaces: string[];
  /** --encap-interface: devices whose VXLAN/GENEVE datagrams are decapsulated in user space (no vxlan0). */
  encapInterfaces: string[];
  /** --vni: decapsulated frames of other VNIs are skipped (other_vni); empty: every VNI. */
  vnis: number[];
  pcap: string | undefined;
  /** --pcap-encap: the pcap holds the tunnels as they arrived on the adapter's own interface. */
  pcapEncap: boolean;
  metricsHost: string;
  /** 0 turns the metrics server off. */
  metricsPort: number;
  /** TCP port for NLB health checks (accepts while healthy); 0 = off. */
  healthCheckPort: number;
  /** --config FILE, re-read on SIGHUP. */
  configFile?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  maxConcurrency: number;
  maxQueue: number;
  maxQueueBytes: number;
  timeoutMs: number;
  drainTimeoutMs: number;
  ringMiB: number;
  /** --ring-block-size: TPACKET_V3 block, a power of two from 128 KiB (README: "Ring depth"). */
  ringBlockKiB: number;
  /** --ring-block-timeout: a block holding frames is handed over after this long, full or not. */
  ringBlockTimeoutMs: number;
  /** Capture threads sharing each interface through PACKET_FANOUT; 1 = capture in the main thread. Ignored with pcap. */
  workers: number;
  maxBodyBytes: number;
  maxFlowBufferBytes: number;
  memcapBytes: number;
  holeTimeoutMs: number;
  idleTimeoutMs: number;
  /** Requests per second replayed after filters and sampling; 0 = no cap. */
  rate: number;
  /** --route-rate 'N:regex': per-route caps (README: Amplification and rate caps). */
  routeRates: string[];
  /** --copy-header NAME: marks amplification copies 1, 2, … */
  copyHeader?: string;
  filters: FilterOptions;
  rewrites: RewriteOptions;
  markHeader: string | undefined;
  /** Addresses of the mirrored service: a destination resolving to one is refused (loop). */
  serviceAddresses: string[];
  tlsInsecure: boolean;
  /** Shadow testing (README: Shadow testing); absent when off. */
  shadow?: ShadowConfig;
  /** --record DIR (README: Recording); absent when off. */
  record?: RecordConfig;
  /** Reading --pcap: 0 = as fast as the destination takes requests; N = the recorded gaps ÷ N. */
  speed: number;
  /** Passes over the --pcap files (--loop). */
  loops: number;
  /** --summary-json FILE, or '-' for stdout: the end-of-run figures in full. */
  summaryJson?: string;
}

/** --record and its limits: the recorder's options but the snap length, which the ring decides. */
export type RecordConfig = Omit<RecordOptions, 'snapLen'>;

export interface ShadowConfig {
  /** --baseline-destination: a copy of production's version, for noise; also the last of `destinations`. */
  baseline?: string;
  diffLog?: string;
  diffLogMaxBytes: number;
  /** Body bytes per side written to the diff log (0 = none). */
  diffBodyBytes: number;
  routes: string[];
  ignoreHeaders: string[];
  redactHeaders: string[];
  /** JSON bodies compared by structure, ignoring these paths; null = by bytes only. */
  jsonIgnore: string[] | null;
}

/**
 * One capture worker per core but one, at most 4. The main thread replays every request and is
 * the limit: on 2 cores a second thread only adds hand-off cost, and past 4 workers capture and
 * parsing are no longer what bounds throughput (test/bench/README.md, "Many cores").
 */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(os.availableParallelism() - 1, 4));
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const DEFAULTS: Omit<Config, 'destinations' | 'pcap' | 'percentageByHeader' | 'markHeader'> = {
  port: 80,
  percentage: 100,
  percentageBy: 'random',
  keepHostHeader: false,
  interfaces: ['vxlan0'],
  encapInterfaces: [],
  vnis: [],
  pcapEncap: false,
  metricsHost: '0.0.0.0',
  metricsPort: 9464,
  healthCheckPort: 0,
  logLevel: 'info',
  maxConcurrency: 64,
  maxQueue: 20_000,
  maxQueueBytes: 256 * 1024 * 1024,
  timeoutMs: 10_000,
  drainTimeoutMs: 5_000,
  ringMiB: DEFAULT_RING_MIB,
  ringBlockKiB: DEFAULT_BLOCK_KIB,
  ringBlockTimeoutMs: DEFAULT_RETIRE_MS,
  workers: defaultWorkers(),
  maxBodyBytes: 64 * 1024 * 1024,
  maxFlowBufferBytes: 4 * 1024 * 1024,
  memcapBytes: 128 * 1024 * 1024,
  holeTimeoutMs: 2_000,
  idleTimeoutMs: 120_000,
  rate: 0,
  speed: 0,
  loops: 1,
  routeRates: [],
  filters: { allowMethods: [], disallowMethods: [], allowUrls: [], disallowUrls: [], allowHeaders: [], disallowHeaders: [] },
  rewrites: { setHeaders: [], removeHeaders: [], rewriteUrls: [] },
  serviceAddresses: [],
  tlsInsecure: false,
};

function int(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
}

/** Checks every value and names the flag in the message. Throws ConfigError. */
export function validateConfig(c: Config): Config {
  if (c.destinations.length === 0 && !c.record) throw new ConfigError('--destination is required, e.g. --destination http://10.0.0.37 (or --record DIR to only record)');
  for (const d of c.destinations) parseDestination(d, { maxConcurrency: c.maxConcurrency, maxQueue: c.maxQueue, maxQueueBytes: c.maxQueueBytes, timeoutMs: c.timeoutMs });
  if (new Set(c.destinations.map((d) => new URL(d).origin)).size !== c.destinations.length) throw new ConfigError('--destination: the same destination is given twice');
  int('filter-request-port', c.port, 1, 65535);
  if (!(typeof c.percentage === 'number' && c.percentage >= 0 && c.percentage <= MAX_PERCENTAGE)) throw new ConfigError(`--percentage must be between 0 and ${MAX_PERCENTAGE} (above 100: copies), got ${JSON.stringify(c.percentage)}`);
  if (!['random', 'header', 'remoteaddr'].includes(c.percentageBy)) throw new ConfigError(`--percentage-by must be header or remoteaddr, got ${JSON.stringify(c.percentageBy)}`);
  if (c.percentageBy === 'header' && !c.percentageByHeader) throw new ConfigError('--percentage-by header needs --percentage-by-header NAME');
  if (c.percentageByHeader !== undefined && !isToken(c.percentageByHeader)) throw new ConfigError(`--percentage-by-header ${JSON.stringify(c.percentageByHeader)} is not a header name`);
  if (c.pcap === undefined) validateInterfaces(c);
  validateEncap(c);
  int('metrics-port', c.metricsPort, 0, 65535);
  int('health-check-port', c.healthCheckPort, 0, 65535);
  if (c.healthCheckPort !== 0 && c.healthCheckPort === c.metricsPort) throw new ConfigError('--health-check-port must differ from --metrics-port');
  if (!c.metricsHost) throw new ConfigError('--metrics-host must not be empty');
  if (!LOG_LEVELS.includes(c.logLevel)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(c.logLevel)}`);
  int('max-concurrency', c.maxConcurrency, 1, 10_000);
  int('max-queue', c.maxQueue, 0, 10_000_000);
  int('max-queue-bytes', c.maxQueueBytes, 0, 2 ** 40);
  int('timeout', c.timeoutMs, 1, 3_600_000);
  int('drain-timeout', c.drainTimeoutMs, 0, 3_600_000);
  int('ring-mb', c.ringMiB, 2, 16384);
  int('workers', c.workers, 1, 64);
  validateRing(c);
  int('max-body-bytes', c.maxBodyBytes, 0, 2 ** 40);
  int('max-flow-buffer-bytes', c.maxFlowBufferBytes, 0, 2 ** 40);
  int('memcap-bytes', c.memcapBytes, 0, 2 ** 40);
  int('hole-timeout', c.holeTimeoutMs, 1, 3_600_000);
  int('idle-timeout', c.idleTimeoutMs, 1, 86_400_000);
  if (!(Number.isFinite(c.rate) && c.rate >= 0 && c.rate <= 10_000_000)) throw new ConfigError(`--rate must be a number of requests per second from 0 (no cap) to 10000000, got ${JSON.stringify(c.rate)}`);
  // Compile once here so a bad regex or header rule stops startup with its flag named.
  buildFilter(c.filters);
  buildRewriter(c.rewrites);
  parseMarker(c.markHeader);
  parseRouteRates(c.routeRates);
  parseCopyMarker(c.copyHeader);
  for (const a of c.serviceAddresses) if (!/^[0-9a-fA-F:.]+$/.test(a)) throw new ConfigError(`--service-address ${JSON.stringify(a)} must be an IP address`);
  if (c.shadow) validateShadow(c.shadow, c.destinations);
  validateFiles(c);
  return c;
}

function validateInterfaces(c: Config): void {
  if (c.interfaces.length + c.encapInterfaces.length === 0) throw new ConfigError('--interface: give at least one interface (or --encap-interface DEV), or --pcap FILE');
  for (const [flag, names] of [['interface', c.interfaces], ['encap-interface', c.encapInterfaces]] as const) {
    for (const i of names) if (!/^[^\s/]{1,15}$/.test(i)) throw new ConfigError(`--${flag} ${JSON.stringify(i)} is not an interface name (1-15 characters, no '/' or spaces)`);
  }
  const all = [...c.interfaces, ...c.encapInterfaces];
  if (new Set(all).size !== all.length) throw new ConfigError('--interface/--encap-interface: the same interface is given twice');
}

/**
 * Decapsulation's settings. Workers are refused: PACKET_FANOUT hashes the outer header, whose UDP
 * source port AWS derives from the inner flow per direction, so the two directions of one
 * connection could land on different workers.
 */
function validateEncap(c: Config): void {
  const decap = c.pcap === undefined ? c.encapInterfaces.length > 0 : c.pcapEncap;
  if (c.pcapEncap && c.pcap === undefined) throw new ConfigError('--pcap-encap needs --pcap FILE');
  if (c.vnis.length > 0 && !decap) throw new ConfigError('--vni selects VNIs when mirror-replay decapsulates: give --encap-interface DEV (or --pcap FILE --pcap-encap)');
  for (const v of c.vnis) int('vni', v, 0, 0xffffff);
  if (new Set(c.vnis).size !== c.vnis.length) throw new ConfigError('--vni: the same VNI is given twice');
  if (c.pcap === undefined && c.encapInterfaces.length > 0 && c.workers > 1) {
    throw new ConfigError(`--encap-interface cannot be used with --workers ${c.workers}: the kernel spreads tunnels over workers by their outer header, which can split a connection's two directions; use --workers 1 (the default with --encap-interface)`);
  }
}

function validateRing(c: Config): void {
  const kib = c.ringBlockKiB;
  if (!Number.isInteger(kib) || kib < 128 || kib > 65536 || (kib & (kib - 1)) !== 0) {
    throw new ConfigError(`--ring-block-size must be a power of two from 128KiB to 64MiB, got ${Number.isInteger(kib) ? `${kib}KiB` : `${Math.round(kib * 1024)} bytes`}`);
  }
  int('ring-block-timeout', c.ringBlockTimeoutMs, 1, MAX_RETIRE_MS);
  if ((c.ringMiB * 1024) % kib !== 0) throw new ConfigError(`--ring-mb ${c.ringMiB} must be a whole number of --ring-block-size ${kib}KiB blocks`);
  // Each worker gets its share of the ring in whole MiB and whole blocks, at least two blocks.
  const share = ringShareMiB(c.ringMiB, c.workers, kib);
  if (c.pcap === undefined && (share * 1024) / kib < 2) {
    throw new ConfigError(`--ring-mb ${c.ringMiB} is too small for --workers ${c.workers}: each worker's ring needs at least 2 blocks of ${kib}KiB (${Math.max(1, (2 * kib) / 1024)} MiB)`);
  }
}

function validateShadow(s: ShadowConfig, destinations: string[]): void {
  if (s.baseline !== undefined && (destinations.length < 2 || destinations[destinations.length - 1] !== s.baseline)) {
    throw new ConfigError('--baseline-destination needs at least one --destination to compare as well');
  }
  int('diff-log-max-bytes', s.diffLogMaxBytes, 4096, 2 ** 40);
  int('diff-body-bytes', s.diffBodyBytes, 0, 1024 * 1024);
  compileRoutes(s.routes);
  for (const p of s.jsonIgnore ?? []) parseJsonPath(p);
  for (const h of [...s.ignoreHeaders, ...s.redactHeaders]) if (!isToken(h)) throw new ConfigError(`${JSON.stringify(h)} is not a header name (--compare-ignore-header / --diff-redact-header)`);
}

/** Recording and reading files. */
function validateFiles(c: Config): void {
  if (!(Number.isFinite(c.speed) && c.speed >= 0 && c.speed <= 1e6)) throw new ConfigError(`--speed must be 0 (as fast as the destination allows) or a positive factor, got ${JSON.stringify(c.speed)}`);
  int('loop', c.loops, 1, 1_000_000);
  if (c.pcap === undefined && (c.speed !== 0 || c.loops !== 1)) throw new ConfigError('--speed and --loop apply to --pcap only');
  const r = c.record;
  if (!r) return;
  if (!r.dir) throw new ConfigError('--record needs a directory');
  if (c.workers > 1 && c.pcap === undefined && !c.shadow) throw new ConfigError(`--record writes one time-ordered series of files from one capture thread: use --workers 1 (got --workers ${c.workers})`);
  int('record-max-file-size', r.maxFileBytes, 0, 2 ** 40);
  if (r.maxFileBytes !== 0 && r.maxFileBytes < 64 * 1024) throw new ConfigError('--record-max-file-size must be 0 (no limit) or at least 64KiB');
  int('record-max-file-age', r.maxFileMs, 0, 366 * 86_400_000);
  int('record-max-files', r.maxFiles, 0, 10_000_000);
  int('record-buffer', r.bufferBytes, 1024 * 1024, 2 ** 36);
}
