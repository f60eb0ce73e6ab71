/**
 * The API reference page in a real browser: Chromium from Debian's packages (installed by
 * scripts/install-chromium.sh, which `npm test` runs first), driven by playwright-core, against the
 * settings function behind a real HTTP server, as `npm start` serves it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsFunction } from '#functions/settings/app';
import { settingsRoutes } from '#functions/settings/routes';
import { compileRoutes, lambdaContext, match, send, toEvent } from '#local/http';
import { testDeps } from '#test/support/api';
import { unreachableProbe } from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let server: Server;
let base: string;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
/** Every URL the page asked for, to prove nothing comes from a CDN. */
const requested: string[] = [];

beforeAll(async () => {
  // Prepare: a missing browser fails here with what to do, instead of skipping quietly.
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: run \`bash scripts/install-chromium.sh\` (npm test runs it before the tests).`,
    );
  const d = await testDeps();
  const handler = settingsFunction(d, { probePop3: unreachableProbe });
  const routes = compileRoutes({ settings: settingsRoutes });
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const found = match(routes, req.method ?? 'GET', url.pathname);
    if (!('route' in found) || !found.route) return send(res, { statusCode: 404, body: '' });
    const event = await toEvent(req, found.route, found.params, d.config.studioClaim);
    send(res, await handler(event, lambdaContext('settings', 29_000)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  userDataDir = mkdtempSync(join(tmpdir(), 'studio-mail-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (r) => requested.push(r.url()));
  await page.goto(`${base}/docs`);
});

afterAll(async () => {
  await context?.close();
  await new Promise((resolve) => server?.close(resolve));
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

describe('GET /docs in a browser', () => {
  it('loads the reference from this server only, titled after the document', async () => {
    // Act
    const title = page.locator('.info .title');
    await title.waitFor();
    // Assess
    expect(await title.textContent()).toContain('studio-mail');
    expect(requested.length).toBeGreaterThan(2);
    expect(requested.filter((u) => !u.startsWith(base))).toEqual([]);
  });

  it('lists the send and poll operations', async () => {
    // Act
    const send = page.locator('.opblock-post .opblock-summary-path[data-path="/emails"]');
    const poll = page.locator('.opblock-post .opblock-summary-path[data-path="/email-boxes/{id}/poll"]');
    await send.waitFor();
    // Assess
    expect(await send.count()).toBe(1);
    expect(await poll.count()).toBe(1);
  });

  it('calls GET /health with "Try it out" and shows its 200 answer', async () => {
    // Prepare
    const health = page.locator('#operations-Operations-GET_health');
    await health.locator('.opblock-summary').click();
    await health.locator('.try-out__btn').click();
    // Act
    await health.locator('.execute').click();
    const status = health.locator('.live-responses-table tbody .response-col_status');
    await status.waitFor();
    // Assess
    expect((await status.textContent())?.trim()).toBe('200');
    expect(await health.locator('.live-responses-table .microlight').first().textContent()).toContain(
      '"status"',
    );
  });
});
