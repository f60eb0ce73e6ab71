import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '#infra/nag';
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from '#lib/http/headers';
import { type RouteSpec, type RouteTable, splitRouteKey } from '#lib/http/routes';

export interface RouteGroup {
  /** A function's route table (functions/<name>/routes.ts): keys, and `access: 'public'` for no token. */
  readonly table: RouteTable;
  readonly handler: lambda.IFunction;
}

/** The route keys of `tables` that answer without a token. */
export function publicRouteKeys(tables: readonly RouteTable[]): string[] {
  return tables.flatMap((t) =>
    (Object.entries(t) as [string, RouteSpec][]).filter(([, s]) => s.access === 'public').map(([k]) => k),
  );
}

export interface StudioApiProps {
  readonly routes: readonly RouteGroup[];
  readonly authorizer: apigw.IHttpRouteAuthorizer;
  /** Allowed CORS origins; empty disables CORS. */
  readonly corsOrigins: readonly string[];
  /** Steady-state requests per second for the whole stage. @default 50 */
  readonly throttleRateLimit?: number;
  /** @default 100 */
  readonly throttleBurstLimit?: number;
}

export function parseRouteKey(routeKey: string): { method: apigw.HttpMethod; path: string } {
  const { method, path } = splitRouteKey(routeKey);
  return { method: apigw.HttpMethod[method], path };
}

/**
 * HTTP API (API Gateway v2): JWT authorizer on every route but the tables' public ones, one Lambda
 * integration per function, stage throttling, JSON access logs and optional CORS.
 */
export class StudioApi extends Construct {
  readonly httpApi: apigw.HttpApi;
  readonly stage: apigw.HttpStage;
  readonly accessLogGroup: logs.LogGroup;
  readonly routes: apigw.HttpRoute[] = [];

  constructor(scope: Construct, id: string, props: StudioApiProps) {
    super(scope, id);
    const corsPreflight: apigw.CorsPreflightOptions | undefined = props.corsOrigins.length
      ? {
          allowOrigins: [...props.corsOrigins],
          allowMethods: [
            apigw.CorsHttpMethod.GET,
            apigw.CorsHttpMethod.POST,
            apigw.CorsHttpMethod.PUT,
            apigw.CorsHttpMethod.PATCH,
            apigw.CorsHttpMethod.DELETE,
            apigw.CorsHttpMethod.OPTIONS,
          ],
          allowHeaders: [...CORS_ALLOW_HEADERS],
          exposeHeaders: [...CORS_EXPOSE_HEADERS],
          maxAge: Duration.hours(1),
        }
      : undefined;

    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'studio-mail: email settings, sending and inbox polling',
      createDefaultStage: false,
      defaultAuthorizer: props.authorizer,
      ...(corsPreflight ? { corsPreflight } : {}),
    });

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttleRateLimit ?? 50, burstLimit: props.throttleBurstLimit ?? 100 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationLatency: '$context.integration.latency',
            integrationError: '$context.integration.error',
            authorizerError: '$context.authorizer.error',
            sub: '$context.authorizer.claims.sub',
          }),
        ),
      },
    });

    const seen = new Set<string>();
    for (const group of props.routes) {
      // One permission per function for the whole API instead of one per route (keeps the
      // function policy small; ~70 routes point at three functions).
      const integration = new HttpLambdaIntegration(`${group.handler.node.id}Integration`, group.handler, {
        scopePermissionToRoute: false,
      });
      for (const [routeKey, spec] of Object.entries(group.table) as [string, RouteSpec][]) {
        if (seen.has(routeKey)) throw new Error(`Route "${routeKey}" is declared twice`);
        seen.add(routeKey);
        const { method, path } = parseRouteKey(routeKey);
        const isPublic = spec.access === 'public';
        const [route] = this.httpApi.addRoutes({
          path,
          methods: [method],
          integration,
          ...(isPublic ? { authorizer: new apigw.HttpNoneAuthorizer() } : {}),
        });
        this.routes.push(route!);
        if (isPublic) {
          acknowledge(
            route!,
            'AwsSolutions-APIG4',
            `${routeKey} is deliberately public (liveness probe / API description); it returns no studio data.`,
          );
        }
      }
    }
  }

  /** The invoke URL of the `$default` stage. */
  get url(): string {
    return this.stage.url;
  }
}
