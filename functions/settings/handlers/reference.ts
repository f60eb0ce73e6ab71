import type { Handler } from '#lib/http/routes';
import type { SettingsContext } from '#lib/settings/context';
import type { RefPath } from '#lib/settings/ref-kinds';
import { createRef, deleteRef, getRef, listRefs, refSpecs, replaceRef } from '#lib/settings/reference';
import { noContent, ok, type SettingsHandlers, type SettingsKey } from './common.ts';

type RefKey = Extract<SettingsKey, `${string} /${RefPath}` | `${string} /${RefPath}/{id}`>;
const NO_PAGE = { limit: 50 };

export function referenceHandlers(ctx: SettingsContext): Pick<SettingsHandlers, RefKey> {
  const out: Record<string, Handler> = {};
  for (const spec of refSpecs) {
    const base = `/${spec.path}`;
    out[`GET ${base}`] = async (req) => {
      const q = req.query as { limit?: number; cursor?: string };
      return ok(
        await listRefs(
          ctx,
          spec,
          req.caller.studioId,
          q.limit ? { limit: q.limit, cursor: q.cursor } : NO_PAGE,
        ),
      );
    };
    out[`POST ${base}`] = async (req) =>
      ok(await createRef(ctx, spec, req.caller.studioId, req.body as never), 201);
    out[`GET ${base}/{id}`] = async (req) =>
      ok(await getRef(ctx, spec, req.caller.studioId, req.params.id ?? ''));
    out[`PUT ${base}/{id}`] = async (req) =>
      ok(await replaceRef(ctx, spec, req.caller.studioId, req.params.id ?? '', req.body as never));
    out[`DELETE ${base}/{id}`] = async (req) => {
      await deleteRef(ctx, spec, req.caller.studioId, req.params.id ?? '');
      return noContent();
    };
  }
  // Built in a loop over the same kinds the table's crud() declares; the edge checks every key is bound.
  return out as unknown as Pick<SettingsHandlers, RefKey>;
}
