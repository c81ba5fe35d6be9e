/** The sign-in screen: a field "API token" and "Sign in", or "Sign in" through the identity provider. */
import { type FormEvent, useId, useState } from 'react';

import { useSession, useSessionState } from './context.ts';

export function SignIn() {
  const session = useSession();
  const state = useSessionState();
  const notice = state.status === 'signedOut' ? state.notice : null;
  return (
    <main className="sign-in" aria-labelledby="sign-in-heading">
      <h2 id="sign-in-heading">Sign in</h2>
      {session.kind === 'oidc' ? (
        <ProviderSignIn notice={notice} onSignIn={() => void session.signIn(window.location.pathname + window.location.search)} />
      ) : (
        <TokenSignIn notice={notice} busy={state.status === 'starting'} onSignIn={(token) => void session.signIn(token)} />
      )}
    </main>
  );
}

function Notice({ id, text }: { id: string; text: string | null }) {
  return text ? (
    <p id={id} className="notice" role="alert">
      {text}
    </p>
  ) : null;
}

function ProviderSignIn({ notice, onSignIn }: { notice: string | null; onSignIn: () => void }) {
  const noticeId = useId();
  return (
    <>
      <p>Sign in with your organisation's account.</p>
      <Notice id={noticeId} text={notice} />
      <button type="button" className="primary" onClick={onSignIn}>
        Sign in
      </button>
    </>
  );
}

function TokenSignIn({ notice, busy, onSignIn }: { notice: string | null; busy: boolean; onSignIn: (token: string) => void }) {
  const [token, setToken] = useState('');
  const fieldId = useId();
  const noticeId = useId();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSignIn(token);
  };
  return (
    <form onSubmit={submit} noValidate>
      <p>
        Paste an API token: <code>udt dev</code> prints one, and <code>udt token create</code> makes one.
      </p>
      <div className="field">
        <label htmlFor={fieldId}>API token</label>
        <input
          id={fieldId}
          type="text"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(event) => setToken(event.target.value)}
          aria-invalid={notice ? true : undefined}
          aria-describedby={notice ? noticeId : undefined}
        />
      </div>
      <Notice id={noticeId} text={notice} />
      <button type="submit" className="primary" disabled={busy}>
        Sign in
      </button>
    </form>
  );
}
