/**
 * The notify function's handler over its dependencies: an EventBridge poll outcome event in, at
 * most one email out. Any error is thrown, so Lambda's single retry and the DLQ keep the event.
 */
import type { Context } from 'aws-lambda';
import type { Deps } from '#lib/app/deps';
import { lambdaHandler } from '#lib/http/api';
import { type NotifyOptions, type NotifyResult, notifyRun } from '#lib/notify/service';

/** The bare handler (no middleware), for tests and the bench that call it directly. */
export function notifyHandler(d: Deps, options: NotifyOptions = {}) {
  return async (event: unknown): Promise<NotifyResult> => {
    try {
      const result = await notifyRun(d, event, options);
      d.logger.info('poll outcome handled', { ...result });
      return result;
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      d.logger.error('poll outcome not handled', { errorName: e.name, errorMessage: e.message });
      throw error;
    }
  };
}

/** The notify function's Lambda handler over `d`: logs carry the request id and cold-start flag. */
export function notifyFunction(d: Deps, options: NotifyOptions = {}) {
  const handle = notifyHandler(d, options);
  return lambdaHandler(d.logger, (event: unknown, _context: Context) => handle(event));
}
