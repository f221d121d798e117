import client from 'prom-client';
import { CAPTURE_ERRORS, type SourceCounts } from '../capture/source.js';
import { ANOMALIES, SKIPS } from '../decode/anomalies.js';
import { ERROR_CODES, OTHER_ERROR_CODE, REPLAY_ERROR_CODES, SYSTEM_ERROR_CODES } from '../errors.js';
import { HTTP_DROP_REASONS } from '../http/types.js';
import { parseDestination, protocolLabel } from '../replay/destination.js';
import { DESTINATION_DROP_REASONS, DROP_REASONS, STATUS_CLASSES, type DropReason, type ReplayObserver } from '../replay/outcome.js';
import { REASSEMBLY_EVENTS } from '../reassemble/table.js';
import { SeriesHistogram, type HistogramSeries } from './histogram.js';

/** What the metrics read at scrape time from the stages (plain numbers: no per-packet cost). */
export interface PipelineProbe {
  /** One entry per capture source; `interface` is the interface name (or the pcap path). */
  capture(): SourceCounts[];
  decodeAnomalies(): Float64Array;
  decodeSkips(): Float64Array;
  reassemblyEvents(): Float64Array;
  flowsOpen(): number;
  reassemblyHeldBytes(): number;
  httpBufferedBytes(): number;
  /** Frames decapsulated in user space per VNI label (decode/tunnel.ts); absent: none. */
  decapFrames?(): ReadonlyMap<string, number>;
  destinations(): Array<{ label: string; queueDepth: number; inFlight: number }>;
}

/** Before the stages are built: every counter at 0. */
function idleProbe(): PipelineProbe {
  return {
    capture: () => [],
    decodeAnomalies: () => new Float64Array(ANOMALIES.length),
    decodeSkips: () => new Float64Array(SKIPS.length),
    reassemblyEvents: () => new Float64Array(REASSEMBLY_EVENTS.length),
    flowsOpen: () => 0,
    reassemblyHeldBytes: () => 0,
    httpBufferedBytes: () => 0,
    destinations: () => [],
  };
}

/** Labels of mirror_replay_replay_errors_total{code}: the catalogue's replay codes, the socket codes, and `other`. */
export const REPLAY_ERROR_LABELS: readonly string[] = [...REPLAY_ERROR_CODES, ...SYSTEM_ERROR_CODES, OTHER_ERROR_CODE];
/** Labels of mirror_replay_errors_total{code}: every code in the catalogue, the socket codes, and `other`. */
export const ERROR_LABELS: readonly string[] = [...ERROR_CODES, ...SYSTEM_ERROR_CODES, OTHER_ERROR_CODE];
const KNOWN_ERROR_LABELS = new Set(ERROR_LABELS);
const KNOWN_REPLAY_LABELS = new Set(REPLAY_ERROR_LABELS);

/** A counter whose value lives in a stage's array; prom-client is told the increase at scrape. */
function arrayCounter(reg: client.Registry, name: string, help: string, label: string, names: readonly string[], read: () => Float64Array) {
  const last = new Float64Array(names.length);
  return new client.Counter({
    name,
    help,
    labelNames: [label],
    registers: [reg],
    collect() {
      const cur = read();
      for (let i = 0; i < names.length; i++) {
        const d = cur[i] - last[i];
        if (d > 0) this.inc({ [label]: names[i] }, d);
        else if (last[i] === 0 && cur[i] === 0) this.inc({ [label]: names[i] }, 0);
        last[i] = cur[i];
      }
    },
  });
}

/**
 * A counter whose values live in a stage and only grow: at scrape, `read` emits each series' current
 * value and prom-client is told the increase. A series shows from its first emit, 0 included.
 */
function scrapedCounter<L extends string>(reg: client.Registry, name: string, help: string, labelNames: readonly L[], read: (emit: (labels: Record<L, string>, value: number) => void) => void) {
  const last = new Map<string, number>();
  return new client.Counter({
    name,
    help,
    labelNames,
    registers: [reg],
    collect() {
      read((labels, value) => {
        const id = labelNames.map((l) => labels[l]).join('\0');
        this.inc(labels, Math.max(0, value - (last.get(id) ?? 0)));
        last.set(id, value);
      });
    },
  });
}

/** A counter per capture source, labelled `interface`, so each mirror session is seen alone. */
function sourceCounter(reg: client.Registry, name: string, help: string, key: Exclude<keyof SourceCounts, 'interface'>, read: () => SourceCounts[]) {
  return scrapedCounter(reg, name, help, ['interface'], (emit) => {
    for (const s of read()) emit({ interface: s.interface }, s[key]);
  });
}

/** mirror_replay_capture_errors_total: every kind at 0 for an interface from its first scrape, so alerts see a 0 and not "no data". */
function captureErrorCounter(reg: client.Registry, read: () => SourceCounts[]) {
  const help = 'Faults a capture loop counted and carried on past, by interface and kind (handler: a stage threw on a frame, which was skipped; see README)';
  return scrapedCounter(reg, 'mirror_replay_capture_errors_total', help, ['interface', 'kind'], (emit) => {
    for (const s of read()) for (const { kind, key } of CAPTURE_ERRORS) emit({ interface: s.interface, kind }, s[key]);
  });
}

/** A counter whose label values appear as the stages see them (bounded by the stage). */
function labelCounter(reg: client.Registry, name: string, help: string, label: string, read: () => ReadonlyMap<string, number>) {
  return scrapedCounter(reg, name, help, [label], (emit) => {
    for (const [k, v] of read()) emit({ [label]: k }, v);
  });
}

/** The `protocol` label of the request counters: h1 for HTTP/1.x, h2 for HTTP/2 (h2c or over TLS). */
export const PROTOCOLS = ['h1', 'h2'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Each destination's label (its origin) and protocol label; a spec that does not parse counts as HTTP/1.1 (the config refuses it first). */
function destinationProtocols(destinations: string[]): Map<string, Protocol> {
  const m = new Map<string, Protocol>();
  for (const d of destinations) {
    let p: Protocol = 'h1';
    try {
      p = protocolLabel(parseDestination(d, { maxConcurrency: 1, maxQueue: 0, maxQueueBytes: 0, timeoutMs: 1 }).opts.protocol);
    } catch {
      // refused by config validation before metrics exist; keep the default
    }
    m.set(new URL(d).origin, p);
  }
  return m;
}

interface DestinationChildren {
  /** Replayed and answered by status class (STATUS_CLASSES order), and how many of them prom-client was told at scrape. */
  replayed: Float64Array;
  told: Float64Array;
  protocol: Protocol;
  latency: HistogramSeries;
  dropped: Map<string, client.Counter.Internal>;
}

/** Every Prometheus metric of the daemon, declared in one place (README lists them). */
export class Metrics implements ReplayObserver {
  readonly registry = new client.Registry();
  private readonly droppedTotal: client.Counter<'reason'>;
  private readonly dropChildren = new Map<string, client.Counter.Internal>();
  private readonly replayedTotal: client.Counter<'destination' | 'status_class' | 'protocol'>;
  private readonly latency: SeriesHistogram;
  private readonly errors: client.Counter<'destination' | 'code'>;
  private readonly allErrors: client.Counter<'code'>;
  private readonly alteredTotal: client.Counter<'what'>;
  /** Requests parsed, by protocol (PROTOCOLS order): an array increment per request, prom-client is told at scrape. */
  private readonly parsedCounts = new Float64Array(PROTOCOLS.length);
  private readonly retriesTotal: client.Counter<'destination'>;
  /** Each destination's protocol label (a destination speaks one). */
  private readonly protocols: Map<string, Protocol>;
  private readonly bytesSkipped: client.Counter<'reason'>;
  private readonly destinationDropped: client.Counter<'destination' | 'reason'>;
  private readonly copiesTotal: client.Counter;
  private readonly rateLimitedTotal: client.Counter<'rule'>;
  /** Labelled children per destination, looked up once: no label hashing per request. */
  private readonly perDestination = new Map<string, DestinationChildren>();

  /** What the stages report, read at scrape time. */
  private probe: PipelineProbe;

  constructor(destinations: string[], probe: PipelineProbe = idleProbe(), opts: { defaultMetrics?: boolean } = {}) {
    this.probe = probe;
    const reg = this.registry;
    // The event-loop lag monitor wakes the process every `precision` ms: at prom-client's 10 ms that was 0.8% of
    // a core on an idle adapter (120 ns per frame at 100k frames/s); 100 ms still shows any lag worth an alert.
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: reg, eventLoopMonitoringPrecision: 100 });

    this.droppedTotal = new client.Counter({ name: 'mirror_replay_requests_dropped_total', help: 'Requests production received that were not replayed, by reason', labelNames: ['reason'], registers: [reg] });
    for (const r of DROP_REASONS) this.dropChildren.set(r, this.droppedTotal.labels(r));
    for (const c of this.dropChildren.values()) c.inc(0);

    this.protocols = destinationProtocols(destinations);
    this.replayedTotal = new client.Counter({ name: 'mirror_replay_requests_replayed_total', help: 'Requests replayed and answered, by destination, status class and protocol (h1, h2)', labelNames: ['destination', 'status_class', 'protocol'], registers: [reg], collect: () => this.tellReplayed() });
    for (const [d, p] of this.protocols) for (const s of STATUS_CLASSES) this.replayedTotal.inc({ destination: d, status_class: s, protocol: p }, 0);
    this.retriesTotal = new client.Counter({ name: 'mirror_replay_replay_retries_total', help: 'Requests sent a second time because the first try was not processed (see README), by destination', labelNames: ['destination'], registers: [reg] });
    for (const d of this.protocols.keys()) this.retriesTotal.inc({ destination: d }, 0);

    this.destinationDropped = new client.Counter({ name: 'mirror_replay_destination_dropped_total', help: 'Requests a destination did not get, by destination and reason (queue_full, timeout, connect_error, ...)', labelNames: ['destination', 'reason'], registers: [reg] });
    for (const d of destinations) for (const r of DESTINATION_DROP_REASONS) this.destinationDropped.inc({ destination: new URL(d).origin, reason: r }, 0);
    this.latency = new SeriesHistogram('mirror_replay_replay_duration_seconds', 'Time from sending a replayed request to the end of its response', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]).register(reg);
    this.errors = new client.Counter({ name: 'mirror_replay_replay_errors_total', help: 'Replay failures by destination and error code', labelNames: ['destination', 'code'], registers: [reg] });
    for (const d of destinations) for (const c of REPLAY_ERROR_LABELS) this.errors.inc({ destination: new URL(d).origin, code: c }, 0);
    this.allErrors = new client.Counter({ name: 'mirror_replay_errors_total', help: 'Failures by error code (src/errors.ts), wherever they happened: replays, capture loops, reloads', labelNames: ['code'], registers: [reg] });
    for (const c of ERROR_LABELS) this.allErrors.inc({ code: c }, 0);
    this.alteredTotal = new client.Counter({ name: 'mirror_replay_requests_altered_total', help: 'Replayed requests whose framing had to change (see README)', labelNames: ['what'], registers: [reg] });
    this.alteredTotal.inc({ what: 'empty_body_framing' }, 0);
    arrayCounter(reg, 'mirror_replay_requests_parsed_total', 'Complete requests decoded from the mirrored traffic, by protocol (h1: HTTP/1.x, h2: HTTP/2)', 'protocol', PROTOCOLS, () => this.parsedCounts);
    this.bytesSkipped = new client.Counter({ name: 'mirror_replay_stream_bytes_skipped_total', help: 'Client stream bytes not parsed as requests (midstream pickup, resync after errors), by reason', labelNames: ['reason'], registers: [reg] });
    for (const r of HTTP_DROP_REASONS) this.bytesSkipped.inc({ reason: r }, 0);
    this.copiesTotal = new client.Counter({ name: 'mirror_replay_copies_total', help: 'Copies made by --percentage above 100 (each then replayed or dropped with a reason, as any request)', registers: [reg] });
    this.rateLimitedTotal = new client.Counter({ name: 'mirror_replay_rate_limited_total', help: 'Requests and copies dropped by a rate cap, by rule (the --route-rate regex, or global for --rate)', labelNames: ['rule'], registers: [reg] });

    const read = (): PipelineProbe => this.probe;
    const cap = () => read().capture();
    sourceCounter(reg, 'mirror_replay_capture_packets_total', 'Frames read from the capture source, by interface', 'packets', cap);
    sourceCounter(reg, 'mirror_replay_capture_bytes_total', 'Bytes read from the capture source, by interface', 'bytes', cap);
    sourceCounter(reg, 'mirror_replay_capture_kernel_drops_total', 'Frames the kernel dropped because the ring was full (PACKET_STATISTICS), by interface', 'kernelDrops', cap);
    sourceCounter(reg, 'mirror_replay_capture_truncated_frames_total', 'Frames captured shorter than on the wire (their bytes become gaps), by interface', 'truncated', cap);
    captureErrorCounter(reg, cap);
    arrayCounter(reg, 'mirror_replay_decode_anomalies_total', 'Malformed frames, by anomaly', 'anomaly', ANOMALIES, () => read().decodeAnomalies());
    arrayCounter(reg, 'mirror_replay_decode_skipped_total', 'Well-formed frames that are not ours, by reason', 'reason', SKIPS, () => read().decodeSkips());
    labelCounter(reg, 'mirror_replay_decap_frames_total', 'Frames taken out of VXLAN/GENEVE in user space (--encap-interface, --pcap-encap), by the innermost VNI; beyond 64 VNIs: vni="other"', 'vni', () => read().decapFrames?.() ?? new Map());
    arrayCounter(reg, 'mirror_replay_reassembly_events_total', 'TCP reassembly events', 'event', REASSEMBLY_EVENTS, () => read().reassemblyEvents());
    new client.Gauge({ name: 'mirror_replay_flows_open', help: 'Client-to-server flows in the table', registers: [reg], collect() { this.set(read().flowsOpen()); } });
    new client.Gauge({ name: 'mirror_replay_reassembly_buffered_bytes', help: 'Out-of-order bytes held by reassembly', registers: [reg], collect() { this.set(read().reassemblyHeldBytes()); } });
    new client.Gauge({ name: 'mirror_replay_http_buffered_bytes', help: 'Bytes of partial requests held by the HTTP parsers', registers: [reg], collect() { this.set(read().httpBufferedBytes()); } });
    new client.Gauge({
      name: 'mirror_replay_replay_queue_depth', help: 'Requests waiting for a free connection, by destination', labelNames: ['destination'], registers: [reg],
      collect() { for (const d of read().destinations()) this.set({ destination: d.label }, d.queueDepth); },
    });
    new client.Gauge({
      name: 'mirror_replay_replay_in_flight', help: 'Requests sent and not yet answered, by destination', labelNames: ['destination'], registers: [reg],
      collect() { for (const d of read().destinations()) this.set({ destination: d.label }, d.inFlight); },
    });
  }

  /** The stages to read at scrape time, once they are built (they report to these metrics, so come after them). */
  readFrom(probe: PipelineProbe): void {
    this.probe = probe;
  }

  private children(destination: string): DestinationChildren {
    let c = this.perDestination.get(destination);
    if (!c) {
      c = {
        replayed: new Float64Array(STATUS_CLASSES.length),
        told: new Float64Array(STATUS_CLASSES.length),
        protocol: this.protocols.get(destination) ?? 'h1',
        latency: this.latency.series({ destination }),
        dropped: new Map(),
      };
      this.perDestination.set(destination, c);
    }
    return c;
  }

  /** At scrape: what was replayed since the last one, to prom-client. */
  private tellReplayed(): void {
    for (const [destination, c] of this.perDestination) {
      for (let i = 0; i < STATUS_CLASSES.length; i++) {
        const n = c.replayed[i] - c.told[i];
        if (n <= 0) continue;
        this.replayedTotal.inc({ destination, status_class: STATUS_CLASSES[i], protocol: c.protocol }, n);
        c.told[i] = c.replayed[i];
      }
    }
  }

  dropped(reason: DropReason, count = 1, destination?: string): void {
    this.dropChildren.get(reason)!.inc(count);
    if (destination !== undefined) {
      const m = this.children(destination).dropped;
      let ch = m.get(reason);
      if (!ch) m.set(reason, (ch = this.destinationDropped.labels(destination, reason)));
      ch.inc(count);
    }
  }
  replayed(destination: string, status: number, seconds: number): void {
    const c = this.children(destination);
    // 1xx..5xx; anything else counts as 5xx.
    c.replayed[status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 4]++;
    this.latency.record(c.latency, seconds);
  }
  /** A complete request decoded from the mirror, by the protocol it came over. */
  parsed(protocol: Protocol): void {
    this.parsedCounts[protocol === 'h1' ? 0 : 1]++;
  }
  retried(destination: string): void {
    this.retriesTotal.inc({ destination });
  }
  error(destination: string, code: string): void {
    this.errors.inc({ destination, code: KNOWN_REPLAY_LABELS.has(code) ? code : OTHER_ERROR_CODE });
    this.failure(code);
  }
  /** A failure outside a replay (a capture loop ended, a reload was refused), by its code. */
  failure(code: string | undefined): void {
    this.allErrors.inc({ code: code !== undefined && KNOWN_ERROR_LABELS.has(code) ? code : OTHER_ERROR_CODE });
  }
  altered(what: 'empty_body_framing'): void {
    this.alteredTotal.inc({ what });
  }
  copied(n: number): void {
    this.copiesTotal.inc(n);
  }
  rateLimited(rule: string): void {
    this.rateLimitedTotal.inc({ rule });
  }
  /** The configured rate caps' labels, each shown at 0 from the start (again after a reload). */
  rateRules(labels: readonly string[]): void {
    for (const rule of labels) this.rateLimitedTotal.inc({ rule }, 0);
  }
  skippedBytes(reason: string, n: number): void {
    this.bytesSkipped.inc({ reason }, n);
  }

  /** Non-zero sums of a counter per value of one label (the exit summary). */
  async byLabel(name: string, label: string): Promise<Record<string, number>> {
    const m = this.registry.getSingleMetric(name);
    const out: Record<string, number> = {};
    if (!m) return out;
    for (const x of (await m.get()).values) {
      const k = String(x.labels[label]);
      if (x.value) out[k] = (out[k] ?? 0) + x.value;
    }
    return out;
  }

  /** Sum of a counter over all label sets (for tests and the exit summary). */
  async total(name: string, filter: Record<string, string> = {}): Promise<number> {
    const m = this.registry.getSingleMetric(name);
    if (!m) return 0;
    const v = await m.get();
    return v.values.filter((x) => Object.entries(filter).every(([k, val]) => String(x.labels[k]) === val)).reduce((a, x) => a + x.value, 0);
  }
}
