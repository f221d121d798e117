/**
 * What the kernel says about the VXLAN interfaces, from `ip -d -j link show` (iproute2's
 * netlink dump as JSON): kind, VNI, UDP port, underlying device, state and MTU.
 */
import { spawnSync } from 'node:child_process';

export interface LinkFacts {
  name: string;
  up: boolean;
  mtu: number;
  kind: string | null;
  /** VXLAN only. */
  vni: number | null;
  port: number | null;
  /** The underlying device the datagrams arrive on (`dev` of vxlan-up.sh), if pinned. */
  device: string | null;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; link?: string } };
}

export function toLinkFacts(l: IpLink): LinkFacts {
  const d = l.linkinfo?.info_data;
  const kind = l.linkinfo?.info_kind ?? null;
  return {
    name: l.ifname,
    up: (l.flags ?? []).includes('UP'),
    mtu: l.mtu ?? 0,
    kind,
    vni: kind === 'vxlan' && typeof d?.id === 'number' ? d.id : null,
    port: kind === 'vxlan' ? (typeof d?.port === 'number' ? d.port : 8472) : null, // kernel default without dstport
    device: kind === 'vxlan' && typeof d?.link === 'string' ? d.link : null,
  };
}

/** Every link in this network namespace. Throws if `ip` cannot run. */
export function readLinks(): LinkFacts[] {
  const r = spawnSync('ip', ['-d', '-j', 'link', 'show'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new Error(`cannot run ip (iproute2): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ip -d -j link show failed: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as IpLink[]).map(toLinkFacts);
}

/** The device of the default route, where VXLAN arrives when the interface pins none. */
export function defaultRouteDevice(): string | null {
  const r = spawnSync('ip', ['-j', 'route', 'show', 'default'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return null;
  const routes = JSON.parse(r.stdout || '[]') as Array<{ dev?: string }>;
  return routes.find((x) => x.dev)?.dev ?? null;
}
