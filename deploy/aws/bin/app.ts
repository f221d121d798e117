#!/usr/bin/env node
// CDK entry point: `npx cdk synth` in deploy/aws (after `npm run build`), or `npm run synth`.
import { buildApp } from '../lib/app.js';

// The CDK CLI tells the app where to write through CDK_OUTDIR; run alone, write to ./cdk.out.
buildApp(process.env.CDK_OUTDIR ? {} : { outdir: 'cdk.out' }).app.synth();
