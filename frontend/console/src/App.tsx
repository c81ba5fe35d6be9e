/** The shell: the heading, the sign-in gate, the choice of "Single" and "Bulk", "History", and the
 *  screen of the route. Each screen lives in its own folder under screens/. */
import { useEffect, useId, useRef, useState } from 'react';
import { Provider as UrqlProvider, useQuery } from 'urql';

import { createApiClient } from './api/client.ts';
import { SignIn } from './auth/SignIn.tsx';
import { useSession, useSessionState } from './auth/context.ts';
import { RequestError } from './components/FieldErrors.tsx';
import { ScreenHeading } from './components/Heading.tsx';
import { Link } from './components/Link.tsx';
import { UserLabel, UserLabelFragment } from './components/UserLabel.tsx';
import { graphql } from './graphql.ts';
import { navigate, paths, type Route, useRoute } from './router.ts';
import { BulkScreen } from './screens/Bulk/index.tsx';
import { HistoryScreen } from './screens/History/index.tsx';
import { SingleScreen } from './screens/Single/index.tsx';
import { TransferScreen } from './screens/Transfer/index.tsx';

const TITLES: Record<Route['name'], string> = {
  single: 'Single',
  bulk: 'Bulk',
  history: 'History',
  transfer: 'Transfer',
  callback: 'Signing in',
  notFound: 'Not found',
};

export function App({ apiPath }: { apiPath: string }) {
  const state = useSessionState();
  const route = useRoute();
  useEffect(() => {
    document.title = `${TITLES[route.name]} · User Data Transfer`;
  }, [route.name]);
  return (
    <div className="page">
      <header className="page-header">
        <h1>User Data Transfer</h1>
      </header>
      {state.status === 'starting' ? (
        <main>
          <p role="status">Signing in…</p>
        </main>
      ) : state.status === 'signedOut' ? (
        <SignIn />
      ) : (
        <SignedIn apiPath={apiPath} route={route} />
      )}
    </div>
  );
}

/** Everything behind the sign-in: a client of its own, so that nothing one person saw is kept for the next. */
function SignedIn({ apiPath, route }: { apiPath: string; route: Route }) {
  const session = useSession();
  const [client] = useState(() => createApiClient(apiPath, session));
  return (
    <UrqlProvider value={client}>
      <Shell route={route} />
    </UrqlProvider>
  );
}

const ShellViewer = graphql(
  `
    query ShellViewer {
      viewer {
        user {
          ...UserLabel
        }
        tenant {
          slug
        }
        canTransfer
      }
    }
  `,
  [UserLabelFragment],
);

function Shell({ route }: { route: Route }) {
  const session = useSession();
  const [viewer, recheck] = useQuery({ query: ShellViewer });
  // Who is signed in is asked again on every move: a token revoked meanwhile sends the person to sign in.
  useEffect(() => recheck({ requestPolicy: 'network-only' }), [route, recheck]);
  useFocusFollowsTheScreen(route);
  const me = viewer.data?.viewer;
  return (
    <>
      <div className="session-bar">
        {me ? (
          <p>
            Signed in as <UserLabel user={me.user} /> in <span className="tenant">{me.tenant.slug}</span>
          </p>
        ) : null}
        <button type="button" onClick={() => void session.signOut()}>
          Sign out
        </button>
      </div>
      <RequestError error={viewer.error} />
      {me && !me.canTransfer ? (
        <p className="notice" role="alert">
          You do not have the permission to transfer user data. Ask a tenant administrator for it.
        </p>
      ) : null}
      <Navigation route={route} />
      <main id="main" className="screen">
        <Screen route={route} />
      </main>
    </>
  );
}

/** A new screen that took away the element holding the focus (a confirmation's "Run Transfer"
 *  opens the transfer's page) gives the focus to its title, so that keyboard and screen reader
 *  users go on from there rather than from the top of the page. A move that leaves the focus
 *  where it was (the choice of Single and Bulk, a link in the navigation) keeps it there. */
function useFocusFollowsTheScreen(route: Route) {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false; // the page just opened: the browser's own start
      return;
    }
    const frame = window.requestAnimationFrame(() => {
      if (document.activeElement === null || document.activeElement === document.body) {
        document.querySelector<HTMLElement>('#main [data-screen-title]')?.focus();
      }
    });
    return () => window.cancelAnimationFrame(frame);
  }, [route]);
}

const KINDS = [
  { name: 'single', label: 'Single', description: 'Transfer data from one user to another', path: paths.single },
  { name: 'bulk', label: 'Bulk', description: 'Perform multiple data transfers at one time via a CSV upload', path: paths.bulk },
] as const;

function Navigation({ route }: { route: Route }) {
  const group = useId();
  return (
    <nav className="console-nav" aria-label="Console">
      <fieldset className="kinds">
        <legend>Transfer type</legend>
        {KINDS.map((kind) => (
          <div className="kind" key={kind.name}>
            <input
              type="radio"
              id={`${group}-${kind.name}`}
              name={`${group}-kind`}
              checked={route.name === kind.name}
              onChange={() => navigate(kind.path)}
              aria-describedby={`${group}-${kind.name}-description`}
            />
            <label htmlFor={`${group}-${kind.name}`}>{kind.label}</label>
            <span id={`${group}-${kind.name}-description`} className="hint">
              {kind.description}
            </span>
          </div>
        ))}
      </fieldset>
      <Link to={paths.history} className="nav-link" aria-current={route.name === 'history' ? 'page' : undefined}>
        History
      </Link>
    </nav>
  );
}

function Screen({ route }: { route: Route }) {
  switch (route.name) {
    case 'single':
    case 'callback':
      return <SingleScreen />;
    case 'bulk':
      return <BulkScreen />;
    case 'history':
      return <HistoryScreen />;
    case 'transfer':
      return <TransferScreen id={route.id} />;
    case 'notFound':
      return (
        <section aria-labelledby="not-found-heading">
          <ScreenHeading id="not-found-heading">Not found</ScreenHeading>
          <p>
            There is no such page in the console. <Link to={paths.single}>Go to Single</Link>.
          </p>
        </section>
      );
  }
}
