import { requireAdmin } from '#lib/http/api';
import {
  createSenderIdentity,
  deleteSenderIdentity,
  getSenderIdentity,
  listSenderIdentities,
  recheckSenderIdentity,
  senderIdentityInput,
  senderIdentityList,
  senderIdentityView,
} from '#lib/settings/sender-identities';
import { body, noContent, ok, type RouteModule } from './common.ts';

const tag = 'Sender identities';

export const senderIdentityRoutes: RouteModule = (ctx) => [
  {
    doc: {
      key: 'GET /sender-identities',
      tag,
      access: 'user',
      summary: "The studio's sender identities with their verification and DKIM status from Amazon SES.",
      response: senderIdentityList,
    },
    handle: async (req) => ok(await listSenderIdentities(ctx, req.caller.studioId)),
  },
  {
    doc: {
      key: 'POST /sender-identities',
      tag,
      access: 'admin',
      summary: 'Add a domain or address the studio sends from through Amazon SES (Easy DKIM).',
      description:
        'Answers with the DNS records to publish (a domain) or says where the verification link went (an address). Sending through SES is allowed only from addresses a verified identity of the studio covers.',
      request: senderIdentityInput,
      response: senderIdentityView,
      status: 201,
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      const { view, created } = await createSenderIdentity(
        ctx,
        req.caller.studioId,
        body(senderIdentityInput, req),
      );
      return ok(view, created ? 201 : 200);
    },
  },
  {
    doc: {
      key: 'GET /sender-identities/{id}',
      tag,
      access: 'user',
      summary: 'One sender identity, its DNS records and its status from Amazon SES.',
      response: senderIdentityView,
    },
    handle: async (req) => ok(await getSenderIdentity(ctx, req.caller.studioId, req.params.id ?? '')),
  },
  {
    doc: {
      key: 'DELETE /sender-identities/{id}',
      tag,
      access: 'admin',
      summary: 'Remove a sender identity; SES sends from it no more.',
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      await deleteSenderIdentity(ctx, req.caller.studioId, req.params.id ?? '');
      return noContent();
    },
  },
  {
    doc: {
      key: 'POST /sender-identities/{id}/verify',
      tag,
      access: 'admin',
      summary: 'Check again now, after publishing the DNS records.',
      description:
        'Amazon SES checks DNS by itself; this reads its status at once. With the local adapters (`npm start`) this is the step that marks the identity verified, standing in for the DNS check.',
      response: senderIdentityView,
    },
    handle: async (req) => {
      requireAdmin(req.caller);
      return ok(await recheckSenderIdentity(ctx, req.caller.studioId, req.params.id ?? ''));
    },
  },
];
