/**
 * The notify function's handler over its dependencies: an EventBridge poll outcome event in, at
 * most one email out. Any error is thrown, so Lambda's single retry and the DLQ keep the event.
 */
import type { Deps } from '#lib/app/deps';
import { type NotifyOptions, type NotifyResult, notifyRun } from '#lib/notify/service';

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
