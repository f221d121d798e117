// The traffic mirror filter and session: inbound TCP to the service port (and, for shadow testing,
// outbound TCP from it), sent to a target as VXLAN with the stack's VNI.
import { Construct } from 'constructs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

export interface MirrorFilterProps {
  readonly servicePort: number;
  /**
   * Also mirror production's answers (egress, TCP from the service port), which `compare:` on the
   * adapters needs. Off, only requests are mirrored: the daemon replays them and never reads answers.
   */
  readonly compare: boolean;
}

/**
 * The filter and its rules, made in `scope` (construct ids as they always were, so a deployed
 * filter keeps its logical id). The fleet construct gives the same filter to every session it makes.
 */
export function mirrorFilter(scope: Construct, props: MirrorFilterProps): ec2.CfnTrafficMirrorFilter {
  const port = props.servicePort;
  const filter = new ec2.CfnTrafficMirrorFilter(scope, 'Filter', {
    description: props.compare ? `mirror-replay: TCP to and from port ${port} (shadow testing)` : `mirror-replay: inbound TCP to port ${port}`,
  });
  new ec2.CfnTrafficMirrorFilterRule(scope, 'InboundService', {
    trafficMirrorFilterId: filter.ref,
    trafficDirection: 'ingress',
    ruleNumber: 100,
    ruleAction: 'accept',
    protocol: 6,
    destinationPortRange: { fromPort: port, toPort: port },
    sourceCidrBlock: '0.0.0.0/0',
    destinationCidrBlock: '0.0.0.0/0',
    description: `TCP to port ${port}`,
  });
  if (props.compare) {
    // Production's answers leave the source ENI: egress, from the service port to any client port.
    new ec2.CfnTrafficMirrorFilterRule(scope, 'OutboundService', {
      trafficMirrorFilterId: filter.ref,
      trafficDirection: 'egress',
      ruleNumber: 100,
      ruleAction: 'accept',
      protocol: 6,
      sourcePortRange: { fromPort: port, toPort: port },
      sourceCidrBlock: '0.0.0.0/0',
      destinationCidrBlock: '0.0.0.0/0',
      description: `TCP from port ${port} (answers, for compare)`,
    });
  }
  return filter;
}

export interface MirrorSessionProps extends MirrorFilterProps {
  /** The production ENI whose traffic is copied. */
  readonly sourceNetworkInterfaceId: string;
  /** A CfnTrafficMirrorTarget's id (an adapter ENI, an NLB or a GWLB endpoint). */
  readonly targetId: string;
  /** The VNI token; the adapter's vxlan env file gets the same one. */
  readonly vni: number;
}

export class MirrorSession extends Construct {
  readonly filter: ec2.CfnTrafficMirrorFilter;
  readonly session: ec2.CfnTrafficMirrorSession;

  constructor(scope: Construct, id: string, props: MirrorSessionProps) {
    super(scope, id);
    this.filter = mirrorFilter(this, props);
    this.session = new ec2.CfnTrafficMirrorSession(this, 'Session', {
      networkInterfaceId: props.sourceNetworkInterfaceId,
      trafficMirrorTargetId: props.targetId,
      trafficMirrorFilterId: this.filter.ref,
      sessionNumber: 1,
      virtualNetworkId: props.vni,
      description: 'mirror-replay: production to the adapter',
    });
  }
}
