// Both stacks in one CDK app, with cdk-nag. `bin/app.ts` runs this; the tests call it directly.
import { App, type AppProps } from 'aws-cdk-lib';
import { acknowledgeFindings, addNag } from './nag.js';
import { MirrorScaleOutStack, type MirrorTargetKind } from './scale-out-stack.js';
import { MirrorTopologyStack } from './topology-stack.js';

export function buildApp(props: AppProps = {}) {
  const app = new App(props);
  const keyPairName = app.node.tryGetContext('keyPairName') as string | undefined;
  const servicePort = Number(app.node.tryGetContext('servicePort') ?? 80);
  const compare = contextFlag(app, 'compare');
  const target = contextTarget(app);
  const topology = new MirrorTopologyStack(app, 'MirrorReplayTopology', { keyPairName, servicePort, compare });
  const scaleOut = new MirrorScaleOutStack(app, 'MirrorReplayScaleOut', { keyPairName, servicePort, compare, target });
  acknowledgeFindings(topology);
  acknowledgeFindings(scaleOut);
  const nag = addNag(app);
  return { app, topology, scaleOut, nag };
}

/** `-c compare=true` arrives as a string, CDK_CONTEXT_JSON or cdk.json may give a boolean. */
function contextFlag(app: App, key: string): boolean {
  const v: unknown = app.node.tryGetContext(key);
  if (v === undefined || v === false || v === 'false') return false;
  if (v === true || v === 'true') return true;
  throw new Error(`context ${key} must be true or false, got ${JSON.stringify(v)}`);
}

function contextTarget(app: App): MirrorTargetKind {
  const v: unknown = app.node.tryGetContext('target') ?? 'nlb';
  if (v === 'nlb' || v === 'gwlb') return v;
  throw new Error(`context target must be nlb or gwlb, got ${JSON.stringify(v)}`);
}
