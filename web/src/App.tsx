import { lazy, Suspense } from "react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createBrowserRouter, Navigate, Outlet, RouterProvider, useLocation } from "react-router";
import { ApiFailure } from "./api/client";
import { useSession, SessionGate } from "./auth/useSession";
import { Shell } from "./ui/Shell";
import { RequirePermission } from "./auth/RequirePermission";
import { SignIn } from "./pages/SignIn";
import { Dashboard } from "./pages/Dashboard";
import { NotFound } from "./pages/NotFound";
import { Profile } from "./pages/Profile";
import { ConfirmSignup, ForgotPassword, ResetPassword, SignUp } from "./pages/Account";

// The instrument page brings the chart library: loaded when first opened.
const InstrumentPage = lazy(() => import("./pages/instrument/InstrumentPage").then((m) => ({ default: m.InstrumentPage })));

const RunsPage = lazy(() => import("./pages/runs/RunsPage").then((m) => ({ default: m.RunsPage })));
const RunPage = lazy(() => import("./pages/runs/RunPage").then((m) => ({ default: m.RunPage })));
const MonitoringPage = lazy(() => import("./pages/monitoring/MonitoringPage").then((m) => ({ default: m.MonitoringPage })));
const PlaygroundPage = lazy(() => import("./pages/playground/PlaygroundPage").then((m) => ({ default: m.PlaygroundPage })));
const AuditPage = lazy(() => import("./pages/audit/AuditPage").then((m) => ({ default: m.AuditPage })));
const admin = () => import("./pages/admin/routes");
const AdminPage = lazy(() => admin().then((m) => ({ default: m.AdminPage })));
const AdminIndex = lazy(() => admin().then((m) => ({ default: m.AdminIndex })));
const Users = lazy(() => admin().then((m) => ({ default: m.Users })));
const ApiKeys = lazy(() => admin().then((m) => ({ default: m.ApiKeys })));
const Bridges = lazy(() => admin().then((m) => ({ default: m.Bridges })));

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      // Refusals are answers, not glitches: retry only what may pass.
      retry: (count, error) =>
        count < 2 && !(error instanceof ApiFailure && error.status >= 400 && error.status < 500),
      refetchOnWindowFocus: true,
      staleTime: 5_000,
    },
  },
});

/** Pages behind sign-in: sends a visitor to /sign-in and back afterwards. */
function RequireSession() {
  const { user } = useSession();
  const location = useLocation();
  if (!user) {
    return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />;
  }
  return (
    <Shell>
      <Outlet />
    </Shell>
  );
}

const router = createBrowserRouter([
  { path: "/sign-in", element: <SignIn /> },
  // Older mails link /login.
  { path: "/login", element: <Navigate to="/sign-in" replace /> },
  { path: "/signup", element: <SignUp /> },
  { path: "/signup/confirm", element: <ConfirmSignup /> },
  { path: "/forgot-password", element: <ForgotPassword /> },
  { path: "/reset-password", element: <ResetPassword /> },
  {
    element: <RequireSession />,
    children: [
      // One page for both: the add dialog opens over the dashboard.
      {
        element: (
          <RequirePermission permission="instruments:view">
            <Dashboard />
          </RequirePermission>
        ),
        children: [{ index: true }, { path: "/instruments/new" }],
      },
      {
        path: "/instruments/:id",
        element: (
          <RequirePermission permission="instruments:view">
            <Suspense fallback={<p role="status">Loading…</p>}>
              <InstrumentPage />
            </Suspense>
          </RequirePermission>
        ),
      },
      {
        path: "/runs",
        element: (
          <RequirePermission permission="runs:view">
            <Suspense fallback={<p role="status">Loading…</p>}>
              <RunsPage />
            </Suspense>
          </RequirePermission>
        ),
      },
      {
        path: "/runs/:id",
        element: (
          <RequirePermission permission="runs:view">
            <Suspense fallback={<p role="status">Loading…</p>}>
              <RunPage />
            </Suspense>
          </RequirePermission>
        ),
      },
      {
        path: "/monitoring",
        element: (
          <RequirePermission permission="instruments:view">
            <Suspense fallback={<p role="status">Loading…</p>}>
              <MonitoringPage />
            </Suspense>
          </RequirePermission>
        ),
      },
      {
        path: "/audit",
        element: (
          <RequirePermission permission="audit:view">
            <Suspense fallback={<p role="status">Loading…</p>}>
              <AuditPage />
            </Suspense>
          </RequirePermission>
        ),
      },
      {
        path: "/admin",
        element: (
          <Suspense fallback={<p role="status">Loading…</p>}>
            <AdminPage />
          </Suspense>
        ),
        children: [
          { index: true, element: <AdminIndex /> },
          { path: "users", element: <RequirePermission permission="users:manage"><Users /></RequirePermission> },
          { path: "api-keys", element: <RequirePermission permission="keys:manage"><ApiKeys /></RequirePermission> },
          { path: "bridges", element: <RequirePermission permission="keys:manage"><Bridges /></RequirePermission> },
        ],
      },
      {
        path: "/playground",
        element: (
          <Suspense fallback={<p role="status">Loading…</p>}>
            <PlaygroundPage />
          </Suspense>
        ),
      },
      { path: "/profile", element: <Profile /> },
      { path: "*", element: <NotFound /> },
    ],
  },
]);

export function App() {
  return (
    <QueryClientProvider client={queries}>
      <SessionGate>
        <RouterProvider router={router} />
      </SessionGate>
    </QueryClientProvider>
  );
}
