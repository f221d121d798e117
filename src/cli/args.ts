import yargs from 'yargs';
import { DEFAULTS, LOG_LEVELS, validateConfig, type Config, type RecordConfig, type ShadowConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { loadConfigFile } from '../config/file.js';

const OPTION_NAMES = [
  'destination', 'filter-request-port', 'percentage', 'percentage-by', 'percentage-by-header', 'keep-host-header',
  'interface', 'encap-interface', 'vni', 'pcap', 'pcap-encap', 'config', 'health-check-port', 'metrics-port', 'metrics-host', 'log-level', 'max-concurrency', 'max-queue', 'max-queue-bytes',
  'timeout', 'drain-timeout', 'ring-mb', 'ring-block-size', 'ring-block-timeout', 'max-body-bytes', 'max-flow-buffer-bytes', 'memcap-bytes', 'hole-timeout',
  'idle-timeout', 'workers', 'help', 'version', 'rate', 'http-allow-method', 'http-disallow-method', 'http-allow-url',
  'http-disallow-url', 'http-allow-header', 'http-disallow-header', 'http-set-header', 'http-remove-header',
  'http-rewrite-url', 'mark-header', 'route-rate', 'copy-header', 'service-address', 'tls-insecure',
  'record', 'record-max-file-size', 'record-max-file-age', 'record-max-files', 'record-gzip', 'record-buffer', 'speed', 'loop', 'summary-json',
];

/**
 * The aws-samples replayer is a Go program whose flags take one dash (`-destination http://…`).
 * Accept that spelling for every long option so its unit files work unchanged.
 */
export function normaliseSingleDash(argv: string[]): string[] {
  const out = argv.map((a) => {
    const m = /^-([a-z][a-z-]+)(=.*)?$/.exec(a);
    return m && OPTION_NAMES.includes(m[1]) ? `-${a}` : a;
  });
  // yargs reads a lone '-' as a positional argument; '--summary-json -' means stdout.
  for (let i = 0; i < out.length - 1; i++) if (out[i] === '--summary-json' && out[i + 1] === '-') out.splice(i, 2, '--summary-json=-');
  return out;
}

export { parseBytes, parseDuration } from '../units.js';
import { parseBytes, parseDuration } from '../units.js';

function num(flag: string, v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (v === '' || v === undefined || !Number.isFinite(n)) throw new ConfigError(`--${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

function list(v: unknown): string[] {
  if (v === undefined) return [];
  const a = Array.isArray(v) ? v : [v];
  // Environment variables carry lists comma-separated.
  return a.flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
}

/** Values that may contain commas themselves (regexes, header values): never split. */
function raw(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function buildParser(argv: string[]) {
  return yargs(normaliseSingleDash(argv))
    .scriptName('mirror-replay')
    .usage('$0 --destination http://TEST-HOST[:PORT] [options]\n\nReplays the HTTP requests mirrored to this host (AWS VPC Traffic Mirroring, decapsulated on vxlan0) to a test environment. Every request not replayed is counted in mirror_replay_requests_dropped_total{reason}.\nFlags also come from MIRROR_REPLAY_<FLAG> environment variables (e.g. MIRROR_REPLAY_DESTINATION); a flag wins over the environment, which wins over --config FILE, which wins over the defaults.')
    .env('MIRROR_REPLAY')
    .option('destination', { type: 'string', array: true, group: 'Replay:', describe: 'Test environment base URL (repeatable: every destination gets every request)' })
    .option('keep-host-header', { type: 'boolean', default: DEFAULTS.keepHostHeader, group: 'Replay:', describe: "Send production's Host value instead of the destination's" })
    .option('max-concurrency', { type: 'number', default: DEFAULTS.maxConcurrency, group: 'Replay:', describe: 'Requests in flight per destination (keep-alive connections)' })
    .option('max-queue', { type: 'number', default: DEFAULTS.maxQueue, group: 'Replay:', describe: 'Requests waiting per destination; beyond it they are dropped (reason queue_full)' })
    .option('max-queue-bytes', { type: 'string', default: '256MiB', group: 'Replay:', describe: 'Body bytes waiting per destination; beyond it: queue_full' })
    .option('timeout', { type: 'string', default: '10s', group: 'Replay:', describe: 'Per-request timeout (reason timeout)' })
    .option('drain-timeout', { type: 'string', default: '5s', group: 'Replay:', describe: 'On SIGTERM, how long in-flight replays may finish' })
    .option('tls-insecure', { type: 'boolean', default: false, group: 'Replay:', describe: 'https destinations: accept any certificate' })
    .option('mark-header', { type: 'string', group: 'Replay:', describe: "Add this header ('Name' or 'Name: value') to replays; captured requests carrying it are dropped (reason loop)" })
    .option('service-address', { type: 'string', array: true, group: 'Replay:', describe: 'Address of the mirrored service; a destination resolving to it is refused (loop guard)' })
    .option('http-allow-method', { type: 'string', array: true, group: 'Filters (reason filtered):', describe: 'Replay only these methods (repeatable)' })
    .option('http-disallow-method', { type: 'string', array: true, group: 'Filters (reason filtered):', describe: 'Never replay these methods (repeatable)' })
    .option('http-allow-url', { type: 'string', array: true, group: 'Filters (reason filtered):', describe: 'Replay only targets (path?query) matching one of these regexes' })
    .option('http-disallow-url', { type: 'string', array: true, group: 'Filters (reason filtered):', describe: 'Never replay targets matching this regex' })
    .option('http-allow-header', { type: 'string', array: true, group: 'Filters (reason filtered):', describe: "'Name: regex': replay only requests with a matching header (all rules must match)" })
    .option('http-disallow-header', { type: 'string', array: true, group: 'Filters (reason filtered):', describe: "'Name: regex': never replay requests with a matching header" })
    .option('http-set-header', { type: 'string', array: true, group: 'Rewrites:', describe: "'Name: value': set a header (replaces every occurrence)" })
    .option('http-remove-header', { type: 'string', array: true, group: 'Rewrites:', describe: 'Remove a header, e.g. Authorization or Cookie (repeatable)' })
    .option('http-rewrite-url', { type: 'string', array: true, group: 'Rewrites:', describe: "'regex:replacement' on the target; $1 refers to a group" })
    .option('rate', { type: 'number', default: 0, group: 'Sampling:', describe: 'Replay at most N requests per second (reason rate_limited); 0 = no cap' })
    .option('route-rate', { type: 'string', array: true, group: 'Sampling:', describe: "'N:regex': at most N requests/s whose target matches regex (repeatable, first match; reason rate_limited, counted per rule)" })
    .option('percentage', { type: 'number', default: DEFAULTS.percentage, group: 'Sampling:', describe: 'Replay this percentage of requests (0-1000; above 100, copies: 250 = 2 sends each, a 3rd for half)' })
    .option('copy-header', { type: 'string', group: 'Sampling:', describe: 'Header marking each copy with --percentage above 100 (values 1, 2, …; the original gets none)' })
    .option('percentage-by', { type: 'string', choices: ['header', 'remoteaddr'], group: 'Sampling:', describe: 'Make sampling sticky by a header value or the client address' })
    .option('percentage-by-header', { type: 'string', group: 'Sampling:', describe: 'Header for --percentage-by header' })
    .option('compare', { type: 'boolean', default: false, group: 'Shadow testing:', describe: "Compare each destination's answers with production's (needs the mirror to carry both directions)" })
    .option('baseline-destination', { type: 'string', group: 'Shadow testing:', describe: "A copy of production's version: differences it shares are reported as noise (implies --compare)" })
    .option('diff-log', { type: 'string', group: 'Shadow testing:', describe: 'JSONL file of differences, rotated by size (implies --compare); summarise with mirror-replay report FILE' })
    .option('diff-log-max-bytes', { type: 'string', default: '64MiB', group: 'Shadow testing:', describe: 'Rotate the diff log at this size (FILE.1 … FILE.3)' })
    .option('diff-body-bytes', { type: 'string', default: '0', group: 'Shadow testing:', describe: 'Body bytes of each side written per difference (0 = none)' })
    .option('compare-route', { type: 'string', array: true, group: 'Shadow testing:', describe: "Route template for per-route metrics, e.g. '/api/users/:id' (repeatable; others: route=\"other\")" })
    .option('compare-ignore-header', { type: 'string', array: true, group: 'Shadow testing:', describe: 'Response header not compared (repeatable; added to the defaults)' })
    .option('diff-redact-header', { type: 'string', array: true, group: 'Shadow testing:', describe: 'Response header whose value is never logged (repeatable; Authorization, Cookie, Set-Cookie always are)' })
    .option('compare-json', { type: 'boolean', default: false, group: 'Shadow testing:', describe: 'Compare JSON bodies by structure (key order ignored)' })
    .option('compare-json-ignore', { type: 'string', array: true, group: 'Shadow testing:', describe: "JSON path left out of the comparison, e.g. 'data.*.updatedAt' (repeatable; implies --compare-json)" })
    .option('interface', { type: 'string', array: true, group: 'Capture:', describe: 'Interface to read mirrored frames from (repeatable) [default: vxlan0]' })
    .option('encap-interface', { type: 'string', array: true, group: 'Capture:', describe: 'Device receiving the mirror\'s VXLAN (UDP 4789) or GWLB GENEVE (UDP 6081) datagrams, decapsulated here: no vxlan0 needed (repeatable; with --workers 1)' })
    .option('vni', { type: 'string', array: true, group: 'Capture:', describe: 'With --encap-interface/--pcap-encap: keep only this VNI (repeatable; others are counted as skipped other_vni) [default: every VNI]' })
    .option('pcap', { type: 'string', group: 'Capture:', describe: 'Read frames from a pcap or pcapng file (gzip or not), or a directory of them in name order, instead; replay, then exit' })
    .option('pcap-encap', { type: 'boolean', default: false, group: 'Capture:', describe: 'The --pcap file was captured on the adapter\'s own interface: decapsulate its VXLAN/GENEVE datagrams' })
    .option('filter-request-port', { type: 'number', default: DEFAULTS.port, group: 'Capture:', describe: 'Service port whose requests are replayed' })
    .option('ring-mb', { type: 'number', default: DEFAULTS.ringMiB, group: 'Capture:', describe: 'AF_PACKET ring size per interface, MiB (shared out among the workers)' })
    .option('ring-block-size', { type: 'string', default: `${DEFAULTS.ringBlockKiB}KiB`, group: 'Capture:', describe: 'Ring block (power of two, 128KiB-64MiB); more, smaller blocks hold a stall longer at low rates' })
    .option('ring-block-timeout', { type: 'string', default: `${DEFAULTS.ringBlockTimeoutMs}ms`, group: 'Capture:', describe: 'A block with frames is handed over after this long, full or not: the added latency; blocks x this is the longest stall absorbed at low rates' })
    .option('workers', { type: 'number', group: 'Capture:', describe: `Capture threads per interface, each flow on one of them (PACKET_FANOUT hash); 1 = capture in the main thread [default: cores − 1, at most 4 (here ${DEFAULTS.workers}); 1 with --encap-interface or --record]` })
    .option('max-body-bytes', { type: 'string', default: '64MiB', group: 'Limits:', describe: 'Largest request body replayed (reason http_body_too_large)' })
    .option('max-flow-buffer-bytes', { type: 'string', default: '4MiB', group: 'Limits:', describe: 'Out-of-order bytes one connection may hold' })
    .option('memcap-bytes', { type: 'string', default: '128MiB', group: 'Limits:', describe: 'Out-of-order bytes all connections may hold' })
    .option('hole-timeout', { type: 'string', default: '2s', group: 'Limits:', describe: 'Give up waiting for a lost segment after this long' })
    .option('idle-timeout', { type: 'string', default: '120s', group: 'Limits:', describe: 'Forget a connection idle this long' })
    .option('record', { type: 'string', group: 'Recording and files:', describe: 'Write the captured frames to rotating pcapng files in DIR (without --destination: only record)' })
    .option('record-max-file-size', { type: 'string', default: '256MiB', group: 'Recording and files:', describe: 'Start a new file at this size, before compression (0: no limit)' })
    .option('record-max-file-age', { type: 'string', default: '1h', group: 'Recording and files:', describe: 'Start a new file when the current one is this old (0: no limit)' })
    .option('record-max-files', { type: 'number', default: 0, group: 'Recording and files:', describe: 'Keep at most this many files in DIR, deleting the oldest (0: keep all)' })
    .option('record-gzip', { type: 'boolean', default: false, group: 'Recording and files:', describe: 'Compress the files (.pcapng.gz)' })
    .option('record-buffer', { type: 'string', default: '64MiB', group: 'Recording and files:', describe: 'Memory for frames waiting for the disk; beyond it frames are dropped (reason buffer_full)' })
    .option('speed', { type: 'number', default: 0, group: 'Recording and files:', describe: '--pcap: 1 keeps the recorded timing, 2 halves the gaps, 0 goes as fast as the destination allows' })
    .option('loop', { type: 'number', default: 1, group: 'Recording and files:', describe: '--pcap: read the files this many times (flows are closed between passes)' })
    .option('summary-json', { type: 'string', group: 'Recording and files:', describe: "At exit write every figure /metrics shows as JSON to FILE ('-': stdout)" })
    .option('metrics-port', { type: 'number', default: DEFAULTS.metricsPort, group: 'Operations:', describe: 'Port for /metrics and /healthz (0 turns it off)' })
    .option('metrics-host', { type: 'string', default: DEFAULTS.metricsHost, group: 'Operations:', describe: 'Address for /metrics and /healthz' })
    .option('health-check-port', { type: 'number', default: DEFAULTS.healthCheckPort, group: 'Operations:', describe: 'TCP port for NLB health checks, open only while healthy (0 turns it off)' })
    .option('config', { type: 'string', group: 'Operations:', describe: 'YAML or JSON file of flag: value; re-read on SIGHUP (the replay policy changes live)' })
    .config('config', (file: string) => loadConfigFile(file))
    .option('log-level', { type: 'string', choices: LOG_LEVELS as unknown as string[], default: DEFAULTS.logLevel, group: 'Operations:', describe: 'Log level (logs are JSON lines on stderr)' })
    .strict()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .exitProcess(false);
}

/** argv (without node and script) to a validated Config. Throws ConfigError. */
export function parseArgs(argv: string[]): Config | null {
  let err = null as Error | null;
  const parser = buildParser(argv).fail((msg, e) => {
    err = e ?? new ConfigError(msg);
  });
  const a = parser.parseSync() as Record<string, unknown>;
  if (err) throw err instanceof ConfigError ? err : new ConfigError(err.message);
  // yargs has printed help or the version itself.
  if (a.help || a.version) return null;
  const dup = (k: string) => Array.isArray(a[k]) && (a[k] as unknown[]).length > 1;
  for (const k of ['filter-request-port', 'percentage', 'percentage-by', 'percentage-by-header', 'pcap', 'metrics-port', 'metrics-host', 'timeout', 'health-check-port', 'config', 'workers', 'ring-block-size', 'ring-block-timeout', 'baseline-destination', 'diff-log', 'record', 'speed', 'loop', 'summary-json', 'copy-header']) {
    if (dup(k)) throw new ConfigError(`--${k} is given more than once`);
  }
  const ifaces = list(a.interface);
  const encapIfaces = list(a['encap-interface']);
  return validateConfig({
    destinations: [...list(a.destination), ...(a['baseline-destination'] ? [String(a['baseline-destination'])] : [])],
    port: num('filter-request-port', a['filter-request-port']),
    percentage: num('percentage', a.percentage),
    percentageBy: (a['percentage-by'] as 'header' | 'remoteaddr' | undefined) ?? 'random',
    percentageByHeader: a['percentage-by-header'] as string | undefined,
    keepHostHeader: Boolean(a['keep-host-header']),
    // --encap-interface alone: no vxlan0 at all.
    interfaces: ifaces.length || encapIfaces.length ? ifaces : DEFAULTS.interfaces,
    encapInterfaces: encapIfaces,
    vnis: list(a.vni).map((v) => num('vni', v)),
    pcap: a.pcap as string | undefined,
    pcapEncap: Boolean(a['pcap-encap']),
    metricsHost: String(a['metrics-host']),
    metricsPort: num('metrics-port', a['metrics-port']),
    healthCheckPort: num('health-check-port', a['health-check-port']),
    configFile: a.config as string | undefined,
    logLevel: a['log-level'] as Config['logLevel'],
    maxConcurrency: num('max-concurrency', a['max-concurrency']),
    maxQueue: num('max-queue', a['max-queue']),
    maxQueueBytes: parseBytes('max-queue-bytes', a['max-queue-bytes']),
    timeoutMs: parseDuration('timeout', a.timeout),
    drainTimeoutMs: parseDuration('drain-timeout', a['drain-timeout']),
    ringMiB: num('ring-mb', a['ring-mb']),
    ringBlockKiB: parseBytes('ring-block-size', a['ring-block-size']) / 1024,
    ringBlockTimeoutMs: parseDuration('ring-block-timeout', a['ring-block-timeout']),
    // Recording and decapsulation need capture in one thread, so they change the default (an explicit --workers N > 1 is refused).
    workers: a.workers === undefined ? (encapIfaces.length || a.record ? 1 : DEFAULTS.workers) : num('workers', a.workers),
    maxBodyBytes: parseBytes('max-body-bytes', a['max-body-bytes']),
    maxFlowBufferBytes: parseBytes('max-flow-buffer-bytes', a['max-flow-buffer-bytes']),
    memcapBytes: parseBytes('memcap-bytes', a['memcap-bytes']),
    holeTimeoutMs: parseDuration('hole-timeout', a['hole-timeout']),
    idleTimeoutMs: parseDuration('idle-timeout', a['idle-timeout']),
    rate: num('rate', a.rate),
    routeRates: raw(a['route-rate']),
    copyHeader: a['copy-header'] as string | undefined,
    filters: {
      allowMethods: list(a['http-allow-method']),
      disallowMethods: list(a['http-disallow-method']),
      allowUrls: raw(a['http-allow-url']),
      disallowUrls: raw(a['http-disallow-url']),
      allowHeaders: raw(a['http-allow-header']),
      disallowHeaders: raw(a['http-disallow-header']),
    },
    rewrites: { setHeaders: raw(a['http-set-header']), removeHeaders: list(a['http-remove-header']), rewriteUrls: raw(a['http-rewrite-url']) },
    markHeader: a['mark-header'] as string | undefined,
    serviceAddresses: list(a['service-address']),
    tlsInsecure: Boolean(a['tls-insecure']),
    shadow: shadowConfig(a),
    record: recordConfig(a),
    speed: num('speed', a.speed),
    loops: num('loop', a.loop),
    summaryJson: a['summary-json'] as string | undefined,
  });
}

function shadowConfig(a: Record<string, unknown>): ShadowConfig | undefined {
  const jsonIgnore = raw(a['compare-json-ignore']);
  if (!a.compare && !a['diff-log'] && !a['baseline-destination']) return undefined;
  return {
    baseline: a['baseline-destination'] as string | undefined,
    diffLog: a['diff-log'] as string | undefined,
    diffLogMaxBytes: parseBytes('diff-log-max-bytes', a['diff-log-max-bytes']),
    diffBodyBytes: parseBytes('diff-body-bytes', a['diff-body-bytes']),
    routes: raw(a['compare-route']),
    ignoreHeaders: list(a['compare-ignore-header']),
    redactHeaders: list(a['diff-redact-header']),
    jsonIgnore: a['compare-json'] || jsonIgnore.length ? jsonIgnore : null,
  };
}

function recordConfig(a: Record<string, unknown>): RecordConfig | undefined {
  if (a.record === undefined) return undefined;
  return {
    dir: String(a.record),
    maxFileBytes: parseBytes('record-max-file-size', a['record-max-file-size']),
    maxFileMs: parseDuration('record-max-file-age', a['record-max-file-age']),
    maxFiles: num('record-max-files', a['record-max-files']),
    gzip: Boolean(a['record-gzip']),
    bufferBytes: parseBytes('record-buffer', a['record-buffer']),
  };
}
