// Stack 1: the blog's topology, as code. A production stand-in in a public subnet is mirrored to
// one adapter running mirror-replay, which replays to a test stand-in in a private subnet.
import type { Construct } from 'constructs';
import { CfnOutput, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ADAPTER_TAG, VXLAN_PORT } from './contract.js';
import { EniInstance, stackParameters } from './instances.js';
import { MirrorSession } from './mirror.js';
import { MirrorNetwork } from './network.js';
import { adapterUserData, demoHttpUserData } from './user-data.js';

export interface TopologyProps extends StackProps {
  /** Default 10.0.0.0/24: the blog's /24 layout in private address space. */
  readonly cidr?: string;
  /** The production service port, mirrored and replayed (default 80). */
  readonly servicePort?: number;
  /** An existing EC2 key pair for SSH through the jump host; without it, use Session Manager. */
  readonly keyPairName?: string;
  /** The blog's t3.nano for source and target; the adapter needs room for the daemon's buffers. */
  readonly sourceInstanceType?: ec2.InstanceType;
  readonly adapterInstanceType?: ec2.InstanceType;
  /**
   * Shadow testing end to end: the filter also mirrors production's answers and the adapter
   * compares the target's answers with them (`compare: true`).
   */
  readonly compare?: boolean;
}

export class MirrorTopologyStack extends Stack {
  readonly network: MirrorNetwork;
  readonly source: EniInstance;
  readonly adapter: EniInstance;
  readonly target: EniInstance;
  readonly mirror: MirrorSession;

  constructor(scope: Construct, id: string, props: TopologyProps = {}) {
    super(scope, id, { description: 'mirror-replay: the blog topology (source, adapter, target) with VPC Traffic Mirroring', ...props });
    const servicePort = props.servicePort ?? 80;
    const params = stackParameters(this);
    this.network = new MirrorNetwork(this, 'Network', {
      cidr: props.cidr ?? '10.0.0.0/24',
      cidrMask: 28,
      maxAzs: 1,
      adminCidr: params.adminCidr.valueAsString,
      servicePort,
      healthCheck: false,
    });
    const vpc = this.network.vpc;
    const keyPair = props.keyPairName ? ec2.KeyPair.fromKeyPairName(this, 'KeyPair', props.keyPairName) : undefined;
    const small = ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.NANO);

    const sourceSg = new ec2.SecurityGroup(this, 'SourceSg', { vpc, description: 'production stand-in: the service port from anywhere, SSH from the admin network' });
    sourceSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(servicePort), 'the production service');
    sourceSg.addIngressRule(ec2.Peer.ipv4(params.adminCidr.valueAsString), ec2.Port.tcp(22), 'SSH to the jump host');
    const adapterSg = new ec2.SecurityGroup(this, 'AdapterSg', { vpc, description: 'mirror-replay adapter: VXLAN from the mirror source, SSH from the jump host' });
    adapterSg.addIngressRule(ec2.Peer.ipv4(this.network.cidr), ec2.Port.udp(VXLAN_PORT), 'mirrored VXLAN');
    adapterSg.addIngressRule(sourceSg, ec2.Port.tcp(22), 'SSH from the jump host');
    const targetSg = new ec2.SecurityGroup(this, 'TargetSg', { vpc, description: 'test environment: the service port from the adapter, SSH from the jump host' });
    targetSg.addIngressRule(adapterSg, ec2.Port.tcp(servicePort), 'replayed requests');
    targetSg.addIngressRule(sourceSg, ec2.Port.tcp(22), 'SSH from the jump host');

    const first = (tier: 'source' | 'adapter' | 'target') => this.network.subnets(tier).subnets[0];
    this.source = new EniInstance(this, 'Source', {
      vpc, subnet: first('source'), securityGroup: sourceSg, keyPair, description: 'TrafficMirrorSourceEC2',
      instanceType: props.sourceInstanceType ?? small, userData: demoHttpUserData(servicePort, 'production'),
    });
    // A public address for the production stand-in: the ENI is created explicitly, so it gets an EIP.
    const eip = new ec2.CfnEIP(this, 'SourceEip', { domain: 'vpc' });
    new ec2.CfnEIPAssociation(this, 'SourceEipAssociation', { allocationId: eip.attrAllocationId, networkInterfaceId: this.source.eni.ref });
    this.target = new EniInstance(this, 'Target', {
      vpc, subnet: first('target'), securityGroup: targetSg, keyPair, description: 'TrafficMirrorTargetEC2',
      instanceType: props.sourceInstanceType ?? small, userData: demoHttpUserData(servicePort, 'test'),
    });
    this.adapter = new EniInstance(this, 'Adapter', {
      vpc, subnet: first('adapter'), securityGroup: adapterSg, keyPair, description: 'TrafficMirrorAdapterEC2',
      instanceType: props.adapterInstanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL),
      userData: adapterUserData({
        vni: params.vni.valueAsString,
        packageSpec: params.packageSpec.valueAsString,
        destination: `http://${this.target.privateIp}${servicePort === 80 ? '' : `:${servicePort}`}`,
        servicePort,
        healthCheck: false,
        compare: props.compare ?? false,
        capture: 'vxlan',
      }),
    });
    Tags.of(this.adapter).add(ADAPTER_TAG.key, ADAPTER_TAG.value);
    // The adapter starts its units at boot; the session only makes sense once it can decapsulate.
    const mirrorTarget = new ec2.CfnTrafficMirrorTarget(this, 'MirrorTarget', {
      networkInterfaceId: this.adapter.eni.ref,
      description: 'mirror-replay adapter ENI',
    });
    this.mirror = new MirrorSession(this, 'Mirror', {
      sourceNetworkInterfaceId: this.source.eni.ref,
      targetId: mirrorTarget.ref,
      vni: params.vni.valueAsNumber,
      servicePort,
      compare: props.compare ?? false,
    });
    this.mirror.node.addDependency(this.adapter.instance);

    new CfnOutput(this, 'SourcePublicIp', { value: eip.ref, description: 'curl http://THIS/ : production; the same request reaches the target' });
    new CfnOutput(this, 'AdapterInstanceId', { value: this.adapter.instance.instanceId, description: 'aws ssm start-session --target THIS' });
    new CfnOutput(this, 'TargetInstanceId', { value: this.target.instance.instanceId, description: 'journalctl -u demo-http shows the replayed requests' });
    new CfnOutput(this, 'TargetPrivateIp', { value: this.target.privateIp });
  }
}
