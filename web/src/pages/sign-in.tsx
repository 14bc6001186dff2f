import { useState, type FormEvent } from 'react';
import { api, ApiError, setToken, type Me } from '../api';
import { ErrorBox } from '../components/ui';

export function SignIn({ reason, onSignedIn }: { reason: string | undefined; onSignedIn: (me: Me) => void }) {
  const [token, setText] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const me = await api<Me>('/api/me', { token: token.trim() });
      setToken(token.trim());
      onSignedIn(me);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? new Error(`That token was refused: ${err.message}`) : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="signin">
      <form onSubmit={(e) => void submit(e)}>
        <h1>Sluice</h1>
        <p>{reason ?? 'This server requires an API token.'}</p>
        <label>
          API token
          <input type="password" autoComplete="off" value={token} onChange={(e) => setText(e.target.value)} placeholder="sluice_…" data-testid="token-input" autoFocus />
        </label>
        <button type="submit" className="primary" disabled={busy || token.trim() === ''}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <ErrorBox error={error} />
        <p className="hint">
          Create one with <code>sluice token create --role viewer|operator|admin</code>.
        </p>
      </form>
    </div>
  );
}
