// The traffic mirror filter and session: inbound TCP to the service port, sent to a target as
// VXLAN with the stack's VNI.
import { Construct } from 'constructs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

export interface MirrorSessionProps {
  /** The production ENI whose traffic is copied. */
  readonly sourceNetworkInterfaceId: string;
  /** A CfnTrafficMirrorTarget's id (an adapter ENI or an NLB). */
  readonly targetId: string;
  /** The VNI token; the adapter's vxlan env file gets the same one. */
  readonly vni: number;
  readonly servicePort: number;
}

export class MirrorSession extends Construct {
  readonly filter: ec2.CfnTrafficMirrorFilter;
  readonly session: ec2.CfnTrafficMirrorSession;

  constructor(scope: Construct, id: string, props: MirrorSessionProps) {
    super(scope, id);
    this.filter = new ec2.CfnTrafficMirrorFilter(this, 'Filter', {
      description: `mirror-replay: inbound TCP to port ${props.servicePort}`,
    });
    // Only client-to-server segments: the daemon replays requests and never reads responses,
    // so mirroring the other direction would only double the VXLAN traffic.
    new ec2.CfnTrafficMirrorFilterRule(this, 'InboundService', {
      trafficMirrorFilterId: this.filter.ref,
      trafficDirection: 'ingress',
      ruleNumber: 100,
      ruleAction: 'accept',
      protocol: 6,
      destinationPortRange: { fromPort: props.servicePort, toPort: props.servicePort },
      sourceCidrBlock: '0.0.0.0/0',
      destinationCidrBlock: '0.0.0.0/0',
      description: `TCP to port ${props.servicePort}`,
    });
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
