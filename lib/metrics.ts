/**
 * Business metrics as CloudWatch Embedded Metric Format (Powertools): one namespace for the stack
 * (`POWERTOOLS_METRICS_NAMESPACE`, set by the stack), no per-studio dimensions (cardinality).
 * Off in the local runner and the tests (`POWERTOOLS_DEV`), where nothing reads them.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

export { MetricUnit };

export function createMetrics(serviceName: string): Metrics {
  return new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'StudioMail', serviceName });
}

/** Adds counts and flushes them at once: our functions do one unit of work per invocation. */
export function count(metrics: Metrics, values: Record<string, number>): void {
  for (const [name, value] of Object.entries(values)) metrics.addMetric(name, MetricUnit.Count, value);
  metrics.publishStoredMetrics();
}
