/**
 * The CDK app (cdk.json: `tsx infra/app.ts`). Reads the studio's context values, builds the
 * stack and runs the cdk-nag AwsSolutions checks at synth; any unacknowledged finding fails synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readSettings } from '#infra/context';
import { featureFlags } from '#infra/feature-flags';
import { StudioMailStack } from '#infra/stack';

const app = new App({ context: featureFlags });
const { region, stackName, ...settings } = readSettings(app.node);

new StudioMailStack(app, stackName, {
  ...settings,
  description: 'studio-mail: email back end of the photo-studio management system',
  env: {
    account: process.env.CDK_DEFAULT_ACCOUNT,
    region: region ?? process.env.CDK_DEFAULT_REGION,
  },
});

// cdk-nag 3 is a policy-validation plugin (v2 was an Aspect): violations fail synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
