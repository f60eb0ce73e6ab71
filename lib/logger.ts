/**
 * Structured JSON logging (Powertools). Every value under a key that names a secret is replaced
 * before it is written, wherever it sits in the object, so a password cannot reach a log line.
 */
import { Logger } from '@aws-lambda-powertools/logger';

const SECRET_KEY = /pass(word)?|secret|token|authorization|credential|apikey|api_key|^pass$|cookie/i;

export function redact(key: string, value: unknown): unknown {
  if (key && SECRET_KEY.test(key) && value !== undefined && value !== null && typeof value !== 'boolean') {
    return '[redacted]';
  }
  return value;
}

export function createLogger(serviceName: string): Logger {
  return new Logger({
    serviceName,
    logLevel: (process.env.LOG_LEVEL as 'INFO' | undefined) ?? 'INFO',
    jsonReplacerFn: redact,
  });
}
