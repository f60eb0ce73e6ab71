/** Errors of the settings services that the shared ones in lib/domain/errors.ts do not cover. */
import { AppError } from '#lib/domain/errors';

/** Settings not saved yet: 404 with what to do about it. */
export class SettingsMissingError extends AppError {
  override readonly name = 'SettingsMissingError';
  override readonly status = 404;
  override readonly code = 'not_found';
}

/**
 * Saving a box failed because its mail server refused the login or could not be reached; nothing
 * was written. Answered 422 with the field to fix; the server's own words and the kind of failure
 * travel in `details` (`serverReply`, `kind`).
 */
export class ConnectionFailedError extends AppError {
  override readonly name = 'ConnectionFailedError';
  override readonly status = 422;
  override readonly code = 'connection_failed';
  constructor(field: string, message: string, serverReply?: string, kind?: string) {
    super(message, { field, details: { serverReply, kind } });
  }
}
