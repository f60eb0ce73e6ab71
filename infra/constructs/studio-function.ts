/**
 * StudioFunction: the ONE place that owns the defaults of every studio-mail Lambda.
 *
 * | Setting        | Default                                   | Why                                                        |
 * | -------------- | ----------------------------------------- | ---------------------------------------------------------- |
 * | runtime        | Node.js 24 (`nodejs24.x`)                 | matches `engines.node` and the local toolchain             |
 * | architecture   | arm64 (Graviton)                          | ~20 % cheaper per GB-s, same or better cold start          |
 * | memory         | 512 MB                                    | CPU scales with memory; 512 keeps API cold starts short    |
 * | timeout        | 29 s                                      | the HTTP API integration limit; longer is wasted           |
 * | tracing        | X-Ray active                              | end-to-end traces through API Gateway and the AWS SDK      |
 * | logs           | own LogGroup, 30 days, explicit role      | no AWSLambdaBasicExecutionRole, no log-retention Lambda    |
 * | bundling       | esbuild, ESM chunks, minified, source maps | see `studioBundling` below (shared with bench/bundles.ts) |
 * | env            | NODE_OPTIONS=--enable-source-maps, Powertools service/namespace, LOG_LEVEL | readable stacks |
 *
 * Per-function settings (memory, timeout, environment, async-invoke retries and failure destination)
 * are props. Everything else is deliberately not configurable here: change the default, not one
 * function.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { type BuildOptions, buildSync } from 'esbuild';
import { acknowledge } from '#infra/nag';

/** Repository root (the directory holding package.json and package-lock.json). */
export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The functions; each has its entry at `functions/<name>/handler.ts` exporting `handler`. */
export const functionNames = [
  'settings',
  'send',
  'inbox-poll',
  'notify',
  'bulk',
  'bulk-worker',
  'bulk-events',
] as const;
export type FunctionName = (typeof functionNames)[number];

export function functionEntry(name: string): string {
  return join(projectRoot, 'functions', name, 'handler.ts');
}

/**
 * Banner that gives the ESM bundle a real `require`, so CommonJS dependencies bundled into it can
 * still `require('node:…')` built-ins. The import is aliased to avoid clashing with bundled names.
 */
export const esmRequireBanner =
  "import { createRequire as __studioMailCreateRequire } from 'node:module';" +
  'const require = __studioMailCreateRequire(import.meta.url);';

/**
 * esbuild settings of every function, in esbuild's own vocabulary; `bundleOptions` turns them into
 * the one esbuild call that the stack (local asset bundling) and bench/bundles.ts both make, so
 * the two cannot drift.
 *
 * `splitting` with ESM output: every dynamic `import()` (lib/app/lazy.ts, the AWS clients in
 * lib/adapters/aws/clients.ts, nodemailer, MIME parsing, the OpenAPI document) becomes a chunk of
 * its own under `chunks/`, loaded and compiled only when a request first needs it. A single-file
 * bundle would inline them, and V8 would compile all of it at every cold start
 * (docs/performance.md). CDK's NodejsFunction cannot split (it passes `--outfile`), hence the
 * asset bundling of our own below.
 *
 * `external` is empty on purpose: the AWS SDK v3 clients are bundled (and tree-shaken) instead of
 * loaded from the runtime, which pins their version to package-lock.json and loads faster than the
 * full runtime-provided packages.
 */
export const studioBundling = {
  platform: 'node',
  target: 'node24',
  format: 'esm',
  minify: true,
  splitting: true,
  sourcemap: true,
  sourcesContent: false,
  mainFields: ['module', 'main'],
  external: [] as string[],
  banner: esmRequireBanner,
} as const;

/** The esbuild settings every bundle of the project shares (split or single-file). */
function sharedOptions(): BuildOptions {
  return {
    format: studioBundling.format,
    minify: studioBundling.minify,
    sourcemap: studioBundling.sourcemap,
    sourcesContent: studioBundling.sourcesContent,
    mainFields: [...studioBundling.mainFields],
    external: [...studioBundling.external],
    banner: { js: studioBundling.banner },
  };
}

/** The esbuild call for function `name` into `outdir`: `index.mjs` plus `chunks/*.mjs` and their maps. */
export function bundleOptions(name: string, outdir: string): BuildOptions {
  return {
    entryPoints: { index: functionEntry(name) },
    outdir,
    bundle: true,
    platform: studioBundling.platform,
    target: studioBundling.target,
    ...sharedOptions(),
    splitting: studioBundling.splitting,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    absWorkingDir: projectRoot,
    logLevel: 'warning',
  };
}

/** Bundles function `name` into `outdir` as the stack ships it; returns the entry file's path. */
export async function bundleFunction(name: string, outdir: string): Promise<string> {
  const { build } = await import('esbuild');
  await build(bundleOptions(name, outdir));
  return join(outdir, 'index.mjs');
}

/**
 * A single-file esbuild call with the same settings (no splitting), for code that bundles one
 * file outside the stack (the hello-world baseline of bench/bundles.ts).
 */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: studioBundling.platform,
    target: studioBundling.target,
    ...sharedOptions(),
    logLevel: 'silent',
  };
}

/**
 * The function's code asset: esbuild run locally at synth time (`bundling.local`; esbuild is a
 * devDependency, so no Docker), its output directory zipped as the asset and hashed by content.
 * Stacks that skip bundling (`aws:cdk:bundling-stacks`, the CDK assertions tests) never run it.
 */
export function functionCode(name: string, files: readonly { from: string; to: string }[] = []): lambda.Code {
  return lambda.Code.fromAsset(projectRoot, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type; never pulled, because local bundling either succeeds or throws.
      image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs24.x'),
      local: {
        tryBundle(outputDir: string): boolean {
          const result = buildSync(bundleOptions(name, outputDir));
          if (result.errors.length > 0)
            throw new Error(`esbuild could not bundle ${name}: ${result.errors[0]!.text}`);
          // Files read at run time (the settings function's swagger-ui files) go beside the bundle.
          for (const f of files) {
            mkdirSync(join(outputDir, f.to), { recursive: true });
            copyFileSync(join(projectRoot, f.from), join(outputDir, f.to, basename(f.from)));
          }
          return true;
        },
      },
    },
  });
}

export const defaultMemoryMb = 512;
export const defaultTimeout = Duration.seconds(29);
export const defaultLogRetention = logs.RetentionDays.ONE_MONTH;

export interface StudioFunctionProps {
  /** One of `functionNames`; selects `functions/<name>/handler.ts`. */
  readonly name: FunctionName;
  readonly description: string;
  /** Environment wired by the stack (merged over the construct's own defaults). */
  readonly environment: Record<string, string>;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default 29 seconds */
  readonly timeout?: Duration;
  /** `LOG_LEVEL` for Powertools. @default 'INFO' */
  readonly logLevel?: string;
  /**
   * Asynchronous invocations (EventBridge, Scheduler): failed events go to this queue after
   * `retryAttempts` retries. Omit for functions that are only invoked synchronously.
   */
  readonly onFailureQueue?: sqs.IQueue;
  /** @default 0 when `onFailureQueue` is set (no retry storm; the caller decides) */
  readonly retryAttempts?: number;
  /** @default 1 hour when `onFailureQueue` is set */
  readonly maxEventAge?: Duration;
  /**
   * Files read at run time, copied into the bundle after esbuild: `from` relative to the project
   * root, `to` a folder inside the bundle (the settings function's swagger-ui files).
   */
  readonly bundleFiles?: readonly { from: string; to: string }[];
}

export class StudioFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: StudioFunctionProps) {
    super(scope, id);
    const entry = functionEntry(props.name);
    if (!existsSync(entry)) throw new Error(`StudioFunction ${props.name}: missing entry ${entry}`);
    this.timeout = props.timeout ?? defaultTimeout;

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: defaultLogRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // An explicit role instead of the default one with the AWSLambdaBasicExecutionRole managed
    // policy: this function may write to its own log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `studio-mail ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);

    const asyncInvoke = props.onFailureQueue
      ? {
          onFailure: new destinations.SqsDestination(props.onFailureQueue),
          retryAttempts: props.retryAttempts ?? 0,
          maxEventAge: props.maxEventAge ?? Duration.hours(1),
        }
      : {};

    this.function = new lambda.Function(this, 'Function', {
      code: functionCode(props.name, props.bundleFiles),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? defaultMemoryMb,
      timeout: this.timeout,
      description: props.description,
      tracing: lambda.Tracing.ACTIVE,
      logGroup: this.logGroup,
      role: this.role,
      recursiveLoop: lambda.RecursiveLoop.TERMINATE,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: `studio-mail-${props.name}`,
        POWERTOOLS_METRICS_NAMESPACE: 'StudioMail',
        LOG_LEVEL: props.logLevel ?? 'INFO',
        ...props.environment,
        // Deployed functions never connect to private, loopback or metadata addresses (SSRF);
        // set last so no per-function environment can turn it on.
        ALLOW_PRIVATE_MAIL_HOSTS: 'false',
      },
      ...asyncInvoke,
    });

    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'Active X-Ray tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which do not support ' +
        'resource-level permissions (the only Resource "*" statement; test/infra checks this).',
    );
  }

  /** Adds a least-privilege statement to this function's role. */
  allow(statement: iam.PolicyStatementProps): void {
    this.role.addToPrincipalPolicy(new iam.PolicyStatement(statement));
  }
}
