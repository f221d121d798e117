// The blog's network: one VPC, a public subnet for the mirror source (and the NAT gateway), a
// private one for the adapter(s) and a private one for the test environment, each with a NACL
// that opens only what the topology uses.
import { Construct } from 'constructs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy } from 'aws-cdk-lib';
import { EPHEMERAL_PORTS, GENEVE_PORT, HEALTH_CHECK_PORT, VXLAN_PORT } from './contract.js';

export type Tier = 'source' | 'adapter' | 'target';

/** One NACL entry, with the reason it exists. */
export interface AclRule {
  readonly egress: boolean;
  readonly protocol: 'tcp' | 'udp';
  readonly from: number;
  readonly to: number;
  readonly cidr: string;
  readonly why: string;
}

export interface AclPlanInput {
  readonly vpcCidr: string;
  readonly sourceCidrs: string[];
  readonly adapterCidrs: string[];
  readonly targetCidrs: string[];
  /** Where SSH to the jump host may come from (a token: the AdminCidr parameter). */
  readonly adminCidr: string;
  readonly servicePort: number;
  /** Adapters behind an NLB answer its TCP health checks. */
  readonly healthCheck: boolean;
  /**
   * Behind a Gateway Load Balancer: its endpoint (in the adapter subnets) takes the VXLAN, and
   * the adapters get it again wrapped in GENEVE (UDP 6081) from the load balancer's nodes.
   */
  readonly gwlb?: boolean;
}

const ANY = '0.0.0.0/0';
const EPH = EPHEMERAL_PORTS;

/**
 * Every NACL entry of the topology. NACLs are stateless, so each connection needs its request
 * direction and its return direction (to ephemeral ports) allowed. Mirrored copies leave the
 * source's ENI without passing the source subnet's NACL (the blog's source ACL allows TCP only),
 * so only the adapter's side opens UDP 4789. Amazon DNS, NTP and instance metadata are not
 * filtered by NACLs.
 */
export function aclPlan(p: AclPlanInput): Record<Tier, AclRule[]> {
  const tcp = (egress: boolean, from: number, to: number, cidr: string, why: string): AclRule => ({ egress, protocol: 'tcp', from, to, cidr, why });
  const source: AclRule[] = [
    tcp(false, 22, 22, p.adminCidr, 'SSH to the jump host, from the admin network only'),
    tcp(false, p.servicePort, p.servicePort, ANY, 'the production service, open to the internet as in the blog'),
    tcp(false, 443, 443, p.vpcCidr, 'HTTPS from the private subnets to the NAT gateway (dnf, npm)'),
    tcp(false, EPH.from, EPH.to, ANY, 'return traffic of connections opened from this subnet (NAT gateway, dnf)'),
    tcp(true, 22, 22, p.vpcCidr, 'SSH from the jump host on to the private instances'),
    tcp(true, 443, 443, ANY, 'HTTPS to the internet (NAT gateway on behalf of the private subnets, dnf)'),
    tcp(true, EPH.from, EPH.to, ANY, 'replies to SSH and HTTP clients, and the NAT gateway\'s replies to the private subnets'),
  ];
  const adapter: AclRule[] = [
    { egress: false, protocol: 'udp', from: VXLAN_PORT, to: VXLAN_PORT, cidr: p.vpcCidr, why: p.gwlb ? 'mirrored VXLAN from the source ENI to the GWLB endpoint' : 'mirrored VXLAN from the source ENI (an NLB keeps the source address)' },
    ...(p.gwlb ? [{ egress: false, protocol: 'udp' as const, from: GENEVE_PORT, to: GENEVE_PORT, cidr: p.vpcCidr, why: 'the same VXLAN wrapped in GENEVE by the Gateway Load Balancer' }] : []),
    ...p.sourceCidrs.map((c) => tcp(false, 22, 22, c, 'SSH from the jump host')),
    ...(p.healthCheck ? [tcp(false, HEALTH_CHECK_PORT, HEALTH_CHECK_PORT, p.vpcCidr, 'health checks from the load balancer\'s nodes')] : []),
    tcp(false, EPH.from, EPH.to, ANY, 'return traffic: the test environment\'s answers to replays, dnf and npm through the NAT gateway'),
    ...p.targetCidrs.map((c) => tcp(true, p.servicePort, p.servicePort, c, 'the replayed requests')),
    tcp(true, 443, 443, ANY, 'dnf and npm through the NAT gateway'),
    tcp(true, EPH.from, EPH.to, p.vpcCidr, p.healthCheck ? 'replies to SSH and to the health checks' : 'replies to SSH'),
  ];
  const target: AclRule[] = [
    ...p.adapterCidrs.map((c) => tcp(false, p.servicePort, p.servicePort, c, 'the replayed requests from the adapters')),
    ...p.sourceCidrs.map((c) => tcp(false, 22, 22, c, 'SSH from the jump host')),
    tcp(false, EPH.from, EPH.to, ANY, 'return traffic of dnf through the NAT gateway'),
    tcp(true, EPH.from, EPH.to, p.vpcCidr, 'answers to the replayed requests, replies to SSH'),
    tcp(true, 443, 443, ANY, 'dnf through the NAT gateway'),
  ];
  return { source, adapter, target };
}

export interface MirrorNetworkProps {
  /** The VPC's CIDR; the blog's is 100.0.0.0/24, see README for why the default is private space. */
  readonly cidr: string;
  /** Subnet size: /28 as in the blog. */
  readonly cidrMask: number;
  /** One AZ as in the blog; two for the scale-out stack. */
  readonly maxAzs: number;
  readonly adminCidr: string;
  readonly servicePort: number;
  readonly healthCheck: boolean;
  /** The adapters sit behind a Gateway Load Balancer (see AclPlanInput.gwlb). */
  readonly gwlb?: boolean;
}

export class MirrorNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  /** The VPC's CIDR as a literal (vpc.vpcCidrBlock is a deploy-time reference). */
  readonly cidr: string;
  readonly rules: Record<Tier, AclRule[]>;

  constructor(scope: Construct, id: string, props: MirrorNetworkProps) {
    super(scope, id);
    this.cidr = props.cidr;
    // Subnet groups in this order allocate the blog's ranges: .0/28 source, .16/28 adapter, .32/28 target.
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      maxAzs: props.maxAzs,
      natGateways: 1,
      subnetConfiguration: [
        { name: 'Source', subnetType: ec2.SubnetType.PUBLIC, cidrMask: props.cidrMask, mapPublicIpOnLaunch: false },
        { name: 'Adapter', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: props.cidrMask },
        { name: 'Target', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: props.cidrMask },
      ],
      restrictDefaultSecurityGroup: true,
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT });

    const cidrs = (t: Tier) => this.subnets(t).subnets.map((s) => s.ipv4CidrBlock);
    this.rules = aclPlan({
      vpcCidr: props.cidr,
      sourceCidrs: cidrs('source'),
      adapterCidrs: cidrs('adapter'),
      targetCidrs: cidrs('target'),
      adminCidr: props.adminCidr,
      servicePort: props.servicePort,
      healthCheck: props.healthCheck,
      gwlb: props.gwlb,
    });
    for (const tier of ['source', 'adapter', 'target'] as const) {
      const acl = new ec2.NetworkAcl(this, `${cap(tier)}Acl`, { vpc: this.vpc, subnetSelection: this.subnets(tier) });
      let inbound = 100;
      let outbound = 100;
      this.rules[tier].forEach((r, i) => {
        acl.addEntry(`${r.egress ? 'Out' : 'In'}${i}`, {
          ruleNumber: r.egress ? (outbound += 10) : (inbound += 10),
          direction: r.egress ? ec2.TrafficDirection.EGRESS : ec2.TrafficDirection.INGRESS,
          cidr: ec2.AclCidr.ipv4(r.cidr),
          traffic: r.protocol === 'udp' ? ec2.AclTraffic.udpPortRange(r.from, r.to) : ec2.AclTraffic.tcpPortRange(r.from, r.to),
          ruleAction: ec2.Action.ALLOW,
        });
      });
    }
  }

  subnets(tier: Tier): ec2.SelectedSubnets {
    return this.vpc.selectSubnets({ subnetGroupName: cap(tier) });
  }
}

function cap(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}
