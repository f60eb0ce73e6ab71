/**
 * Where Microsoft Graph and its token service are, from the environment (tests point both at a
 * local stand-in). Small on purpose: functions read it at start and load the Graph code itself
 * only when a Graph box or transport is first used.
 */
export const GRAPH_BASE = 'https://graph.microsoft.com/v1.0';

export interface GraphSettings {
  /** Default https://graph.microsoft.com/v1.0 (`GRAPH_API_BASE`). */
  readonly apiBase: string;
  /** Default https://login.microsoftonline.com (`GRAPH_LOGIN_BASE`). */
  readonly loginBase: string;
}

export function graphSettingsFromEnv(env: Record<string, string | undefined>): GraphSettings {
  return {
    apiBase: env.GRAPH_API_BASE || GRAPH_BASE,
    loginBase: env.GRAPH_LOGIN_BASE || 'https://login.microsoftonline.com',
  };
}
