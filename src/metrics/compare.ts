import client from 'prom-client';
import { COMPARE_RESULTS, type CompareResult } from '../compare/compare.js';
import { OTHER_ROUTE } from '../compare/routes.js';
import { ANSWER_LOSS_REASONS, type AnswerLossReason } from '../compare/production.js';
import { SHADOW_PROTOCOLS, type ShadowObserver, type ShadowProtocol } from '../compare/shadow.js';

/** The shadow-testing metrics (README: Shadow testing), in the daemon's registry. */
export class CompareMetrics implements ShadowObserver {
  private readonly comparedTotal: client.Counter<'destination' | 'result'>;
  private readonly byRoute: client.Counter<'destination' | 'route' | 'result'> | null;
  private readonly byProtocol: client.Counter<'protocol' | 'result'>;
  private readonly noise: client.Counter<'destination' | 'result'>;
  private readonly lostTotal: client.Counter<'reason'>;
  private readonly activeGauge: client.Gauge;
  private readonly diffLogFailed: client.Counter;

  constructor(reg: client.Registry, destinations: string[], routes: string[]) {
    this.comparedTotal = new client.Counter({ name: 'mirror_replay_responses_compared_total', help: "Destination responses compared with production's, by destination and result", labelNames: ['destination', 'result'], registers: [reg] });
    this.noise = new client.Counter({ name: 'mirror_replay_responses_noise_total', help: 'Mismatches that also show between production and the baseline destination (noise), by destination and result', labelNames: ['destination', 'result'], registers: [reg] });
    this.byRoute = routes.length
      ? new client.Counter({ name: 'mirror_replay_responses_compared_by_route_total', help: 'As mirror_replay_responses_compared_total, by configured route template (others: route="other")', labelNames: ['destination', 'route', 'result'], registers: [reg] })
      : null;
    for (const d of destinations)
      for (const r of COMPARE_RESULTS) {
        this.comparedTotal.inc({ destination: d, result: r }, 0);
        if (r !== 'match' && r !== 'unpaired') this.noise.inc({ destination: d, result: r }, 0);
        if (this.byRoute) for (const route of [...routes, OTHER_ROUTE]) this.byRoute.inc({ destination: d, route, result: r }, 0);
      }
    this.byProtocol = new client.Counter({ name: 'mirror_replay_responses_compared_by_protocol_total', help: 'As mirror_replay_responses_compared_total (all destinations), by protocol: h1, h2, grpc', labelNames: ['protocol', 'result'], registers: [reg] });
    for (const p of SHADOW_PROTOCOLS) for (const r of COMPARE_RESULTS) this.byProtocol.inc({ protocol: p, result: r }, 0);
    this.lostTotal = new client.Counter({ name: 'mirror_replay_responses_lost_total', help: 'Production responses seen on the mirror that could not be digested, by reason', labelNames: ['reason'], registers: [reg] });
    for (const r of ANSWER_LOSS_REASONS) this.lostTotal.inc({ reason: r }, 0);
    this.activeGauge = new client.Gauge({ name: 'mirror_replay_compare_active', help: "1 while production's responses are seen on the mirror (comparison works), 0 when only inbound traffic is mirrored", registers: [reg] });
    this.diffLogFailed = new client.Counter({ name: 'mirror_replay_diff_log_write_failures_total', help: 'Diff log lines that could not be written (disk full, ...)', registers: [reg] });
  }

  active(on: boolean): void {
    this.activeGauge.set(on ? 1 : 0);
  }

  compared(destination: string, route: string, result: CompareResult, noise: boolean, protocol: ShadowProtocol): void {
    this.comparedTotal.inc({ destination, result });
    this.byProtocol.inc({ protocol, result });
    this.byRoute?.inc({ destination, route, result });
    if (noise) this.noise.inc({ destination, result });
  }

  lost(reason: AnswerLossReason): void {
    this.lostTotal.inc({ reason });
  }

  diffLogFailures(lines: number): void {
    this.diffLogFailed.inc(lines);
  }
}
