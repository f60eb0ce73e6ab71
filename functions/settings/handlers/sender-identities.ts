import type { SettingsContext } from '#lib/settings/context';
import {
  createSenderIdentity,
  deleteSenderIdentity,
  getSenderIdentity,
  listSenderIdentities,
  recheckSenderIdentity,
} from '#lib/settings/sender-identities';
import { noContent, ok, type SettingsHandlers } from './common.ts';

type Keys =
  | 'GET /sender-identities'
  | 'POST /sender-identities'
  | 'GET /sender-identities/{id}'
  | 'DELETE /sender-identities/{id}'
  | 'POST /sender-identities/{id}/verify';

export const senderIdentityHandlers = (ctx: SettingsContext): Pick<SettingsHandlers, Keys> => ({
  'GET /sender-identities': async (req) => ok(await listSenderIdentities(ctx, req.caller.studioId)),
  'POST /sender-identities': async (req) => {
    const { view, created } = await createSenderIdentity(ctx, req.caller.studioId, req.body);
    return ok(view, created ? 201 : 200);
  },
  'GET /sender-identities/{id}': async (req) =>
    ok(await getSenderIdentity(ctx, req.caller.studioId, req.params.id ?? '')),
  'DELETE /sender-identities/{id}': async (req) => {
    await deleteSenderIdentity(ctx, req.caller.studioId, req.params.id ?? '');
    return noContent();
  },
  'POST /sender-identities/{id}/verify': async (req) =>
    ok(await recheckSenderIdentity(ctx, req.caller.studioId, req.params.id ?? '')),
});
