// The Gateway Load Balancer mirror target: GWLB (GENEVE 6081 to the adapters) + endpoint service +
// a GWLB endpoint, which is what the traffic mirror target names. Appliances behind a GWLB get each
// packet wrapped in GENEVE with AWS's TLV options (class 0x0108); for a mirror session that packet
// is the mirrored VXLAN datagram, so the adapters decapsulate twice (--encap-interface).
import { Construct } from 'constructs';
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { GENEVE_PORT, HEALTH_CHECK_PORT } from './contract.js';

/**
 * GWLB flow stickiness (target group attribute `stickiness.type`): `source_ip_dest_ip` is the
 * 2-tuple. For a mirror session the outer packet runs from the source ENI to the endpoint, so the
 * 2-tuple keeps everything one mirror source sends, both directions of every connection, on one
 * adapter. The default 5-tuple would hash the outer UDP source port, which differs per inner flow.
 */
export const GWLB_STICKINESS = 'source_ip_dest_ip';

export interface GatewayTargetProps {
  readonly vpc: ec2.IVpc;
  /** Subnets of the load balancer (the adapters'); the endpoint goes in the first. */
  readonly subnets: ec2.ISubnet[];
}

export class GatewayMirrorTarget extends Construct {
  readonly loadBalancer: elbv2.CfnLoadBalancer;
  readonly targetGroup: elbv2.CfnTargetGroup;
  readonly endpoint: ec2.CfnVPCEndpoint;
  readonly mirrorTarget: ec2.CfnTrafficMirrorTarget;

  constructor(scope: Construct, id: string, props: GatewayTargetProps) {
    super(scope, id);
    this.loadBalancer = new elbv2.CfnLoadBalancer(this, 'Gwlb', {
      type: 'gateway',
      subnets: props.subnets.map((s) => s.subnetId),
      // Any healthy adapter may take a source, whichever AZ it is in.
      loadBalancerAttributes: [{ key: 'load_balancing.cross_zone.enabled', value: 'true' }],
    });
    this.targetGroup = new elbv2.CfnTargetGroup(this, 'Adapters', {
      protocol: 'GENEVE',
      port: GENEVE_PORT,
      vpcId: props.vpc.vpcId,
      targetType: 'instance',
      // The daemon's --health-check-port accepts TCP only while it is healthy.
      healthCheckProtocol: 'TCP',
      healthCheckPort: String(HEALTH_CHECK_PORT),
      healthCheckIntervalSeconds: 10,
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 2,
      targetGroupAttributes: [
        { key: 'stickiness.enabled', value: 'true' },
        { key: 'stickiness.type', value: GWLB_STICKINESS },
        { key: 'deregistration_delay.timeout_seconds', value: '30' },
        // A failed adapter's sources move to a healthy one instead of being dropped (the default).
        { key: 'target_failover.on_deregistration', value: 'rebalance' },
        { key: 'target_failover.on_unhealthy', value: 'rebalance' },
      ],
    });
    new elbv2.CfnListener(this, 'Listener', {
      loadBalancerArn: this.loadBalancer.ref,
      defaultActions: [{ type: 'forward', targetGroupArn: this.targetGroup.ref }],
    });
    const service = new ec2.CfnVPCEndpointService(this, 'Service', {
      gatewayLoadBalancerArns: [this.loadBalancer.ref],
      acceptanceRequired: false,
    });
    this.endpoint = new ec2.CfnVPCEndpoint(this, 'Endpoint', {
      vpcId: props.vpc.vpcId,
      vpcEndpointType: 'GatewayLoadBalancer',
      serviceName: `com.amazonaws.vpce.${Stack.of(this).region}.${service.ref}`,
      subnetIds: [props.subnets[0].subnetId],
    });
    this.mirrorTarget = new ec2.CfnTrafficMirrorTarget(this, 'MirrorTarget', {
      gatewayLoadBalancerEndpointId: this.endpoint.ref,
      description: 'mirror-replay GWLB endpoint (GENEVE 6081 to the adapters)',
    });
  }
}
