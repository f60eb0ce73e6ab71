/** Read-only views over what the inbox poller stores: runs, messages, tasks. */
import { ValidationError } from '#lib/domain/errors';
import type { SettingsContext } from '#lib/settings/context';
import { ok, type SettingsHandlers } from './common.ts';

type Keys =
  | 'GET /email-boxes/{id}/runs'
  | 'GET /clients/{id}/messages'
  | 'GET /messages'
  | 'GET /messages/{id}'
  | 'GET /tasks';

export const inboxHandlers = (ctx: SettingsContext): Pick<SettingsHandlers, Keys> => ({
  'GET /email-boxes/{id}/runs': async ({ caller, params, query }) => {
    // 404 when the box does not exist, rather than an empty page.
    await ctx.repos.emailBoxes.require(caller.studioId, params.id ?? '');
    return ok(await ctx.repos.runs.list(caller.studioId, params.id ?? '', query.limit, query.cursor));
  },
  'GET /clients/{id}/messages': async ({ caller, params, query }) => {
    await ctx.repos.clients.require(caller.studioId, params.id ?? '');
    return ok(
      await ctx.repos.messages.listForClient(caller.studioId, params.id ?? '', query.limit, query.cursor),
    );
  },
  'GET /messages': async ({ caller, query }) => {
    // Exactly one list: a rule across two parameters, so it is checked here rather than by the schema.
    if ((query.unassigned === 'true') === (query.quarantined === 'true'))
      throw ValidationError.field(
        'unassigned',
        'say which list: ?unassigned=true (mail matched to no client) or ?quarantined=true (mail that could not be imported).',
      );
    const sid = caller.studioId;
    return ok(
      query.unassigned === 'true'
        ? await ctx.repos.messages.listUnassigned(sid, query.limit, query.cursor)
        : await ctx.repos.messages.listQuarantined(sid, query.limit, query.cursor),
    );
  },
  'GET /messages/{id}': async ({ caller, params }) =>
    ok(await ctx.repos.messages.require(caller.studioId, params.id ?? '')),
  'GET /tasks': async ({ caller, query }) =>
    ok(await ctx.repos.tasks.list(caller.studioId, query.limit, query.cursor)),
});
