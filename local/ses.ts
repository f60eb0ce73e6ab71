/** The local SES (aws-ses-v2-local) on 127.0.0.1, with its web viewer and GET /store of sent mail. */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type startServer from 'aws-ses-v2-local';
import { freePort } from './ports.ts';

export interface SesLocal {
  endpoint: string;
  /** Sent mail as JSON (aws-ses-v2-local's store). */
  storeUrl: string;
  stop(): Promise<void>;
}

export async function startSesLocal(port?: number): Promise<SesLocal> {
  const chosen = port ?? (await freePort());
  // A CommonJS module whose default export ESM interop wraps differently per loader; require it.
  const start = (createRequire(import.meta.url)('aws-ses-v2-local') as { default: typeof startServer })
    .default;
  const server: Server = await start({ host: '127.0.0.1', port: chosen });
  const endpoint = `http://127.0.0.1:${chosen}`;
  return {
    endpoint,
    storeUrl: `${endpoint}/store`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
