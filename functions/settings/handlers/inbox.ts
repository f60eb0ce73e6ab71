/** Read-only views over what the inbox poller stores: runs, messages, tasks. */
import { NotFoundError, ValidationError } from '#lib/domain/errors';
import { listBoxMail } from '#lib/inbox/box-mail';
import { downloadLink } from '#lib/inbox/downloads';
import type { SettingsContext } from '#lib/settings/context';
import { ok, type SettingsHandlers } from './common.ts';

type Keys =
  | 'GET /email-boxes/{id}/runs'
  | 'GET /email-boxes/{id}/runs/{runId}'
  | 'GET /email-boxes/{id}/messages'
  | 'GET /messages/{id}/raw'
  | 'GET /messages/{id}/body/{part}'
  | 'GET /messages/{id}/attachments/{index}'
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
  'GET /email-boxes/{id}/runs/{runId}': async ({ caller, params }) => {
    const boxId = params.id ?? '';
    const runId = params.runId ?? '';
    await ctx.repos.emailBoxes.require(caller.studioId, boxId);
    const run = await ctx.repos.runs.get(caller.studioId, boxId, runId);
    if (!run) throw new NotFoundError('run', runId);
    return ok({ run });
  },
  'GET /email-boxes/{id}/messages': async ({ caller, params, query }) =>
    ok(
      await listBoxMail(ctx.repos, caller.studioId, params.id ?? '', query.state, query.limit, query.cursor),
    ),
  'GET /messages/{id}/raw': async ({ caller, params }) =>
    ok(await downloadLink(ctx, caller.studioId, params.id ?? '', 'raw')),
  'GET /messages/{id}/body/{part}': async ({ caller, params }) =>
    // `part` is `text` or `html`, checked by the route's params schema.
    ok(await downloadLink(ctx, caller.studioId, params.id ?? '', params.part === 'html' ? 'html' : 'text')),
  'GET /messages/{id}/attachments/{index}': async ({ caller, params }) =>
    // `index` is validated (a whole number from 0) and converted by the route's params schema.
    ok(await downloadLink(ctx, caller.studioId, params.id ?? '', Number(params.index))),
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
  'GET /tasks': async ({ caller, query }) => {
    const { limit, cursor, ...filter } = query;
    return ok(await ctx.repos.tasks.list(caller.studioId, limit, cursor, filter));
  },
});
