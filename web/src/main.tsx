import { lazy, StrictMode, Suspense, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, ApiError, getToken, onUnauthorized, setToken, type Me } from './api';
import { Spinner } from './components/ui';
import { PipelinesPage } from './pages/pipelines';
import { RunsPage } from './pages/runs';
import { SignIn } from './pages/sign-in';
import { Link, match, navigate, useLocation } from './router';
import { SessionContext } from './session';
import './styles.css';

// Pages with the graph, charts and editors load on demand; the first screen stays small.
const pages = {
  pipeline: () => import('./pages/pipeline'),
  run: () => import('./pages/run'),
  datasets: () => import('./pages/datasets'),
};
const PipelinePage = lazy(pages.pipeline);
const RunPage = lazy(pages.run);
const DatasetsPage = lazy(pages.datasets);

// The page of the address opened starts loading at once, alongside the sign-in check.
if (location.pathname.startsWith('/runs/')) void pages.run();
else if (location.pathname.startsWith('/pipelines/')) void pages.pipeline();
else if (location.pathname.startsWith('/datasets')) void pages.datasets();

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [reason, setReason] = useState<string>();
  const loc = useLocation();

  const check = useCallback(() => {
    api<Me>('/api/me').then(setMe, (err: unknown) => {
      setMe(null);
      if (err instanceof ApiError && err.status !== 401) setReason(err.message);
    });
  }, []);

  useEffect(() => {
    onUnauthorized((err) => {
      setToken(null);
      setReason(
        err.code === 'TOKEN_EXPIRED' ? 'Your token expired; sign in with a new one.' : err.code === 'TOKEN_REVOKED' ? 'Your token was revoked; sign in with another one.' : 'Sign in with an API token.',
      );
      setMe(null);
    });
    check();
  }, [check]);

  if (me === undefined) return <Spinner label="Connecting…" />;
  if (me === null) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(m) => {
          setReason(undefined);
          setMe(m);
        }}
      />
    );
  }
  const signOut = () => {
    setToken(null);
    setMe(null);
    setReason(undefined);
    navigate('/');
  };
  return (
    <SessionContext.Provider value={{ me, signOut }}>
      <header className="top">
        <Link to="/" className="brand">
          Sluice
        </Link>
        <nav>
          <Link to="/" className={loc.path === '/' || loc.path.startsWith('/pipelines') ? 'active' : ''}>
            Pipelines
          </Link>
          <Link to="/runs" className={loc.path.startsWith('/runs') ? 'active' : ''}>
            Runs
          </Link>
          <Link to="/datasets" className={loc.path.startsWith('/datasets') ? 'active' : ''}>
            Datasets
          </Link>
        </nav>
        <span className="who" data-testid="who">
          {me.name ?? (me.auth ? 'signed in' : 'no auth (local)')} · <b>{me.role}</b>
          {me.auth && getToken() ? (
            <button type="button" className="link" onClick={signOut}>
              Sign out
            </button>
          ) : null}
        </span>
      </header>
      <main>
        <Suspense fallback={<Spinner />}>
          <Routes path={loc.path} />
        </Suspense>
      </main>
    </SessionContext.Provider>
  );
}

function Routes({ path }: { path: string }) {
  let m: Record<string, string> | null;
  if (path === '/' || path === '/pipelines') return <PipelinesPage />;
  if ((m = match('/pipelines/:name', path))) return <PipelinePage key={m['name']} name={m['name']!} />;
  if (path === '/runs') return <RunsPage />;
  if ((m = match('/runs/:id', path))) return <RunPage key={m['id']} id={m['id']!} />;
  if (path === '/datasets') return <DatasetsPage />;
  if ((m = match('/datasets/:name', path))) return <DatasetsPage key={m['name']} name={m['name']!} />;
  return (
    <div className="empty">
      No page here. <Link to="/">Go to pipelines</Link>
    </div>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
