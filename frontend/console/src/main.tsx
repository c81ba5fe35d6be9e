/** The console's start: its settings from the API, the session (restored, from a sign-in link, or
 *  coming back from the identity provider), then the shell. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './App.tsx';
import { createSession, SessionContext } from './auth/index.ts';
import { LiveRegionProvider } from './components/LiveRegion.tsx';
import { loadConfig } from './config.ts';
import { navigate, parseRoute } from './router.ts';
import './styles.css';

async function start(): Promise<void> {
  const root = createRoot(document.getElementById('root')!);
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    root.render(
      <main className="page">
        <h1>User Data Transfer</h1>
        <p role="alert">{error instanceof Error ? error.message : String(error)} Reload the page to try again.</p>
      </main>,
    );
    return;
  }
  const session = createSession(config);
  root.render(
    <StrictMode>
      <SessionContext.Provider value={session}>
        <LiveRegionProvider>
          <App apiPath={config.apiPath} />
        </LiveRegionProvider>
      </SessionContext.Provider>
    </StrictMode>,
  );
  if (session.kind === 'oidc' && parseRoute(window.location.pathname).name === 'callback') {
    navigate(await session.completeSignIn(), true);
  } else {
    await session.start();
  }
}

void start();
