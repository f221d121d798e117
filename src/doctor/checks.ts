/**
 * `mirror-replay doctor`: checks the adapter the way an experienced operator would and says,
 * for each finding, what to do. The one that matters most: the VNI the mirror session sends
 * must equal the VNI of the capture interface, or the kernel drops every packet silently.
 */
import fs from 'node:fs';
import net from 'node:net';
import { defaultRouteDevice, readLinks, type LinkFacts } from './links.js';
import type { FlowSummary } from './flows.js';
import { sampleTunnels, sampleVxlan, type Sample, type TunnelSample } from './sample.js';

export type Status = 'ok' | 'warning' | 'error';

export interface Check {
  status: Status;
  /** Short and stable: "interface vxlan0", "vni", "traffic eth0", "destination http://…". */
  name: string;
  message: string;
  fix?: string;
}

export interface DoctorOptions {
  interfaces: string[];
  destinations: string[];
  /** How long to sample VXLAN on each underlying device. */
  seconds: number;
  connectTimeoutMs?: number;
  /** Production's TCP port inside the mirrored packets (the daemon's --filter-request-port). */
  port?: number;
  /** The daemon compares answers (--compare): both directions must arrive here. */
  compare?: boolean;
  /** --encap-interface: devices that receive the tunnels themselves (no vxlan0). */
  encapInterfaces?: string[];
  /** --vni: the VNIs the daemon keeps from those devices (empty: every VNI). */
  vnis?: number[];
}

const CAP_NET_RAW = 13;

/** CAP_NET_RAW in this process's effective set, from /proc/self/status. */
export function hasNetRaw(status = fs.readFileSync('/proc/self/status', 'utf8')): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_RAW))) !== 0n;
}

export async function runChecks(o: DoctorOptions): Promise<Check[]> {
  const out: Check[] = [];
  const netRaw = hasNetRaw();
  out.push(
    netRaw
      ? { status: 'ok', name: 'capability', message: 'CAP_NET_RAW is present: AF_PACKET capture can open' }
      : { status: 'error', name: 'capability', message: 'CAP_NET_RAW is missing: capture cannot open AF_PACKET sockets', fix: 'run as root, or give the service AmbientCapabilities=CAP_NET_RAW (deploy/systemd/mirror-replay.service does)' },
  );

  let links: LinkFacts[];
  try {
    links = readLinks();
  } catch (e) {
    out.push({ status: 'error', name: 'links', message: (e as Error).message, fix: 'install iproute2 (apt-get install iproute2)' });
    return out;
  }
  const byName = new Map(links.map((l) => [l.name, l]));
  const configured: LinkFacts[] = [];
  for (const name of o.interfaces) {
    const l = byName.get(name);
    if (!l) {
      out.push({ status: 'error', name: `interface ${name}`, message: `${name} does not exist`, fix: `create it with the mirror session's VNI: scripts/vxlan-up.sh --vni N --name ${name}` });
      continue;
    }
    configured.push(l);
    const facts = l.kind === 'vxlan' ? `VNI ${l.vni}, UDP port ${l.port}, device ${l.device ?? '(any)'}, MTU ${l.mtu}` : `kind ${l.kind ?? 'physical'}, MTU ${l.mtu}`;
    if (!l.up) out.push({ status: 'error', name: `interface ${name}`, message: `${name} is down (${facts}): nothing reaches the capture`, fix: `ip link set ${name} up (or run scripts/vxlan-up.sh again)` });
    else if (l.kind !== 'vxlan') out.push({ status: 'warning', name: `interface ${name}`, message: `${name} is up but is not a VXLAN interface (${facts})`, fix: 'mirrored traffic arrives as VXLAN: capture the interface made by scripts/vxlan-up.sh' });
    else if (!l.device) out.push({ status: 'warning', name: `interface ${name}`, message: `${name} is up (${facts}) but not tied to a device: datagrams are accepted from any interface`, fix: `recreate it with --dev (the ENI the mirror targets): scripts/vxlan-up.sh --vni ${l.vni} --name ${name} --dev DEV` });
    else out.push({ status: 'ok', name: `interface ${name}`, message: `${name} is up: ${facts}` });
  }

  const vxlans = links.filter((l) => l.kind === 'vxlan');
  // One sample per underlying device and port of the configured VXLAN interfaces.
  const targets = new Map<string, { device: string; port: number }>();
  for (const l of configured) {
    if (l.kind !== 'vxlan') continue;
    const device = l.device ?? defaultRouteDevice();
    if (!device) {
      out.push({ status: 'warning', name: `traffic ${l.name}`, message: `${l.name} has no device and there is no default route: cannot tell where VXLAN arrives`, fix: `recreate it with --dev DEV` });
      continue;
    }
    targets.set(`${device}:${l.port}`, { device, port: l.port! });
  }
  if (!netRaw && targets.size) {
    out.push({ status: 'warning', name: 'traffic', message: 'not sampled: capturing needs CAP_NET_RAW', fix: 'run doctor as root' });
  } else {
    const samples = await Promise.all(
      [...targets.values()].map((t) => sampleVxlan(t.device, t.port, o.seconds, o.port ?? 80).catch((e: unknown) => ({ error: e as Error, ...t }))),
    );
    for (const s of samples) {
      if ('error' in s) {
        out.push({ status: 'error', name: `traffic ${s.device}`, message: `could not capture on ${s.device}: ${s.error.message}` });
        continue;
      }
      out.push(...judgeSample(s, vxlans, configured, byName.get(s.device)?.mtu ?? 0));
      if (s.datagrams > 0) out.push(...judgeFlows(s.flows, o.compare ?? false));
    }
  }

  for (const name of o.encapInterfaces ?? []) out.push(...(await checkEncapInterface(name, byName.get(name), netRaw, o)));
  for (const d of o.destinations) out.push(await checkDestination(d, o.connectTimeoutMs ?? 3000));
  return out;
}

/** An --encap-interface device: up, and what its tunnels carry (the kernel has no say: nothing is dropped silently by VNI). */
async function checkEncapInterface(name: string, l: LinkFacts | undefined, netRaw: boolean, o: DoctorOptions): Promise<Check[]> {
  if (!l) return [{ status: 'error', name: `interface ${name}`, message: `${name} does not exist`, fix: '--encap-interface names the device the mirror (or the Gateway Load Balancer) sends to, e.g. eth0' }];
  if (!l.up) return [{ status: 'error', name: `interface ${name}`, message: `${name} is down: nothing reaches the capture`, fix: `ip link set ${name} up` }];
  const out: Check[] = [{ status: 'ok', name: `interface ${name}`, message: `${name} is up (MTU ${l.mtu}); its VXLAN and GENEVE datagrams are taken apart by mirror-replay (--encap-interface)` }];
  if (!netRaw) return [...out, { status: 'warning', name: `traffic ${name}`, message: 'not sampled: capturing needs CAP_NET_RAW', fix: 'run doctor as root' }];
  let s: TunnelSample;
  try {
    s = await sampleTunnels(name, o.seconds, o.port ?? 80);
  } catch (e) {
    return [...out, { status: 'error', name: `traffic ${name}`, message: `could not capture on ${name}: ${(e as Error).message}` }];
  }
  out.push(...judgeTunnels(s, o.vnis ?? [], l.mtu));
  if (s.vnis.size > 0) out.push(...judgeFlows(s.flows, o.compare ?? false));
  return out;
}

/** Findings from a tunnel sample; exported so every branch is testable without a network. */
export function judgeTunnels(s: TunnelSample, keep: readonly number[], deviceMtu: number): Check[] {
  const where = `on ${s.device} (UDP 4789 VXLAN, 6081 GENEVE) in ${s.seconds} s`;
  const seen = [...s.vnis.entries()].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const frames = seen.reduce((n, [, k]) => n + k, 0);
  if (frames === 0) {
    return [{
      status: 'error',
      name: `traffic ${s.device}`,
      message: `no tunnelled frames arrived ${where}${s.malformed ? ` (${s.malformed} malformed tunnel headers)` : ''}`,
      fix: 'allow inbound UDP 4789 (mirror target) or UDP 6081 (Gateway Load Balancer target) in the security group and network ACLs; check that the mirror session is active, targets this ENI (or the NLB/GWLB in front of it), and that its filter accepts production\'s traffic',
    }];
  }
  const out: Check[] = [{ status: 'ok', name: `traffic ${s.device}`, message: `${frames} tunnelled frames arrived ${where}: ${seen.map(([v, n]) => `VNI ${v} (${n})`).join(', ')}` }];
  if (s.malformed) out.push({ status: 'warning', name: `traffic ${s.device}`, message: `${s.malformed} datagrams to a tunnel port had malformed headers (mirror_replay_decode_anomalies_total counts them)`, fix: 'something other than the mirror sends to UDP 4789/6081, or a middlebox alters it' });
  out.push(...judgeKeptVnis(seen, keep, where));
  out.push(
    s.truncated
      ? { status: 'warning', name: `truncation ${s.device}`, message: `${s.truncated} mirrored segments arrived cut short (${s.device} MTU ${deviceMtu}); their requests are counted as dropped`, fix: 'AWS truncates mirrored packets above the mirror target\'s MTU: use an ENI with MTU 9001 (jumbo frames) and keep production\'s packets below 8951 bytes' }
      : { status: 'ok', name: `truncation ${s.device}`, message: 'no truncated segments' },
  );
  if (s.kernelDrops) out.push({ status: 'warning', name: `traffic ${s.device}`, message: `the sample lost ${s.kernelDrops} frames in the kernel (counts above are low)` });
  return out;
}

/** With --vni, the sessions seen and the sessions kept should be the same. */
function judgeKeptVnis(seen: Array<[number, number]>, keep: readonly number[], where: string): Check[] {
  if (keep.length === 0) return [{ status: 'ok', name: 'vni', message: `every VNI is replayed (no --vni): ${seen.map(([v]) => v).join(', ')}; connections are told apart by VNI` }];
  const out: Check[] = [];
  for (const [vni, n] of seen) {
    if (keep.includes(vni)) out.push({ status: 'ok', name: 'vni', message: `mirror session VNI ${vni} arrives (${n} frames) and is kept by --vni ${vni}` });
    else out.push({ status: 'warning', name: 'vni', message: `VNI ${vni} arrives (${n} frames) but is not in --vni ${keep.join(',')}: counted as skipped (other_vni), never replayed`, fix: `add --vni ${vni} if this session should be replayed, or narrow the mirror session's target` });
  }
  for (const vni of keep) {
    if (!seen.some(([v]) => v === vni)) out.push({ status: 'warning', name: 'vni', message: `--vni ${vni} is kept but no frame with VNI ${vni} arrived ${where}`, fix: `check the mirror session for VNI ${vni} (active, filter, target)` });
  }
  return out;
}

/** Turns what arrived into findings; exported so every branch is testable without a network. */
export function judgeSample(s: Sample, vxlans: LinkFacts[], configured: LinkFacts[], deviceMtu: number): Check[] {
  const out: Check[] = [];
  const where = `on ${s.device} (UDP ${s.port}) in ${s.seconds} s`;
  if (s.datagrams === 0) {
    out.push({
      status: 'error',
      name: `traffic ${s.device}`,
      message: `no VXLAN datagrams arrived ${where}`,
      fix: `allow inbound UDP ${s.port} from the mirror source in the adapter's security group and the subnet's network ACLs; check that the mirror session is active, targets this ENI, and that its filter accepts production's traffic (e.g. inbound TCP 80); and that production has traffic`,
    });
    return out;
  }
  const here = vxlans.filter((l) => l.port === s.port && (l.device === null || l.device === s.device));
  const mine = configured.filter((l) => here.includes(l));
  const seen = [...s.vnis.entries()].sort((a, b) => b[1] - a[1]);
  const seenText = seen.map(([v, n]) => `VNI ${v} (${n})`).join(', ');
  out.push({ status: 'ok', name: `traffic ${s.device}`, message: `${s.datagrams} VXLAN datagrams arrived ${where}: ${seenText || 'none with a VNI'}` });
  if (s.notVxlan) out.push({ status: 'warning', name: `traffic ${s.device}`, message: `${s.notVxlan} datagrams to UDP ${s.port} were not VXLAN (no I flag)`, fix: `something other than the mirror sends to UDP ${s.port}; the kernel drops these` });

  for (const [vni, n] of seen) {
    const owner = here.find((l) => l.vni === vni);
    if (owner && mine.includes(owner)) {
      out.push({ status: 'ok', name: 'vni', message: `mirror session uses VNI ${vni}, ${owner.name} has VNI ${vni}: they match (${n} datagrams)` });
    } else if (owner) {
      out.push({ status: 'warning', name: 'vni', message: `mirror session uses VNI ${vni}, decapsulated by ${owner.name}, which mirror-replay does not capture`, fix: `add --interface ${owner.name}` });
    } else {
      const have = mine.length ? mine.map((l) => `${l.name} has VNI ${l.vni}`).join(', ') : 'no configured VXLAN interface on this device';
      const fixName = mine[0]?.name ?? 'vxlan0';
      out.push({
        status: 'error',
        name: 'vni',
        message: `mirror session uses VNI ${vni}, ${have}: the kernel drops these ${n} datagrams silently`,
        fix: `make them equal: scripts/vxlan-down.sh --name ${fixName} && scripts/vxlan-up.sh --vni ${vni} --name ${fixName} --dev ${s.device}, or set the mirror session's VNI to ${mine[0]?.vni ?? 'the interface VNI'}`,
      });
    }
  }
  for (const l of mine) {
    if (!s.vnis.has(l.vni!)) out.push({ status: 'warning', name: 'vni', message: `${l.name} has VNI ${l.vni} but no datagram with VNI ${l.vni} arrived ${where}`, fix: `check the mirror session for VNI ${l.vni} (active, filter, target)` });
  }

  if (s.truncated) {
    out.push({
      status: 'warning',
      name: `truncation ${s.device}`,
      message: `${s.truncated} of ${s.datagrams} mirrored packets arrived cut short (${s.device} MTU ${deviceMtu}); their requests are counted as dropped`,
      fix: `AWS truncates mirrored packets above the mirror target's MTU: use an ENI with MTU 9001 (jumbo frames) and keep production's packets below 8951 bytes`,
    });
  } else {
    out.push({ status: 'ok', name: `truncation ${s.device}`, message: `no truncated packets; largest inner packet ${s.largestInnerIp} bytes, ${s.device} MTU ${deviceMtu}` });
  }
  if (s.kernelDrops) out.push({ status: 'warning', name: `traffic ${s.device}`, message: `the sample lost ${s.kernelDrops} frames in the kernel (counts above are low)` });
  return out;
}

export async function checkDestination(url: string, timeoutMs: number): Promise<Check> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { status: 'error', name: `destination ${url}`, message: 'not a URL', fix: 'give e.g. --destination http://10.0.0.37:8080' };
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const err = await new Promise<Error | null>((resolve) => {
    const s = net.connect({ host, port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(new Error(`no answer within ${timeoutMs} ms`));
    });
    s.once('error', (e) => resolve(e));
  });
  if (!err) return { status: 'ok', name: `destination ${u.origin}`, message: `TCP ${host}:${port} accepts connections` };
  return { status: 'error', name: `destination ${u.origin}`, message: `TCP ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, fix: 'check the test environment is up and its security group allows TCP from the adapter' };
}

/** Findings about what the service port carries and, with --compare, about directions. */
export function judgeFlows(f: FlowSummary, compare: boolean): Check[] {
  const port = f.servicePort;
  const out: Check[] = [];
  if (f.connections === 0) {
    const others = f.otherPorts.slice(0, 3).map(([p, n]) => `${p} (${n} segments)`).join(', ');
    out.push({
      status: 'warning',
      name: `port ${port}`,
      message: `no TCP connection on port ${port} in the mirrored packets${others ? `; other ports seen: ${others}` : ''}`,
      fix: others ? `if the service listens on another port, give it: --filter-request-port ${f.otherPorts[0][0]}` : 'check that production has traffic and that the mirror filter accepts it',
    });
    return out;
  }
  const judged = f.tls + f.http + f.other;
  if (f.tls > 0) {
    out.push({
      status: f.http === 0 ? 'error' : 'warning',
      name: `tls port ${port}`,
      message: `port ${port} carries TLS: ${f.tls} of ${judged} connections began with a TLS record; their requests are encrypted and are counted as dropped (reason "tls"), never replayed`,
      fix: 'mirror the plaintext hop instead: terminate TLS at a load balancer (ALB, or NLB with a TLS listener) and mirror the ENIs of its targets, with the filter on the port they serve plain HTTP on',
    });
  } else if (judged > 0) {
    out.push({ status: 'ok', name: `port ${port}`, message: `${judged} connections on port ${port} began in plain text (${f.http} with an HTTP request line), none with TLS` });
  }
  if (compare) out.push(judgeDirections(f));
  return out;
}

/** With --compare, each connection's requests and answers must reach this one adapter. */
function judgeDirections(f: FlowSummary): Check {
  const port = f.servicePort;
  const oneWay = f.upOnly + f.downOnly;
  // A connection that begins or ends at the sample's edge may show one direction: judge the majority.
  if (oneWay * 2 <= f.connections) {
    return { status: 'ok', name: 'directions', message: `both directions of ${f.connections - oneWay} of ${f.connections} connections on port ${port} arrive here: --compare can pair answers with requests` };
  }
  return {
    status: 'warning',
    name: 'directions',
    message: `--compare is on but ${oneWay} of ${f.connections} connections on port ${port} arrive in one direction only (${f.upOnly} with requests and no answers, ${f.downOnly} with answers and no requests): their answers cannot be compared`,
    fix: `mirror both directions (an outbound filter rule from source port ${port} beside the inbound one), and keep each mirror source on one adapter (NLB: source_ip stickiness on the UDP target group; a split by outer 5-tuple can send a connection's two directions to different adapters)`,
  };
}
