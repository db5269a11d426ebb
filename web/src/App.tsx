// The application shell: the session gate (login, forced password change), the navigation,
// the live event socket shared by every page, and the page for the current path.
import { useEffect, type ReactNode } from "react";
import { Link } from "./components/Link";
import { LiveEvents } from "./components/LiveEvents";
import { Toasts } from "./components/Toasts";
import { Spinner } from "./components/Spinner";
import { matchPath, navigate, useLocation } from "./router";
import { can, useAuth } from "./stores/auth";
import { LoginPage } from "./pages/LoginPage";
import { PasswordChangePage } from "./pages/PasswordChangePage";
import { DashboardPage } from "./pages/DashboardPage";
import { ContainersPage } from "./pages/ContainersPage";
import { CreateContainerPage } from "./pages/CreateContainerPage";
import { ContainerDetailPage } from "./pages/container/ContainerDetailPage";
import { ImagesPage } from "./pages/ImagesPage";
import { VolumesPage } from "./pages/VolumesPage";
import { NetworksPage } from "./pages/NetworksPage";
import { HostsPage } from "./pages/hosts/HostsPage";
import { UsersPage } from "./pages/UsersPage";
import { AuditPage } from "./pages/AuditPage";
import { EventsPage } from "./pages/EventsPage";

interface Route {
  path: string;
  render: (params: Record<string, string>) => ReactNode;
  admin?: boolean;
}

const ROUTES: Route[] = [
  { path: "/", render: () => <DashboardPage /> },
  { path: "/containers", render: () => <ContainersPage /> },
  { path: "/containers/new", render: () => <CreateContainerPage /> },
  { path: "/containers/:id", render: (p) => <ContainerDetailPage id={p.id!} /> },
  { path: "/images", render: () => <ImagesPage /> },
  { path: "/volumes", render: () => <VolumesPage /> },
  { path: "/networks", render: () => <NetworksPage /> },
  { path: "/hosts", render: () => <HostsPage /> },
  { path: "/events", render: () => <EventsPage /> },
  { path: "/users", render: () => <UsersPage />, admin: true },
  { path: "/audit", render: () => <AuditPage />, admin: true },
];

const NAV: { href: string; label: string; admin?: boolean }[] = [
  { href: "/", label: "Dashboard" },
  { href: "/containers", label: "Containers" },
  { href: "/images", label: "Images" },
  { href: "/volumes", label: "Volumes" },
  { href: "/networks", label: "Networks" },
  { href: "/hosts", label: "Hosts" },
  { href: "/events", label: "Events" },
  { href: "/users", label: "Users", admin: true },
  { href: "/audit", label: "Audit log", admin: true },
];

export function App() {
  const status = useAuth((s) => s.status);
  const user = useAuth((s) => s.user);
  useEffect(() => {
    void useAuth.getState().restore();
  }, []);

  if (status === "loading") return <Spinner label="Starting…" />;
  if (status === "signed-out" || !user) return <LoginPage />;
  if (user.must_change_password) return <PasswordChangePage forced />;
  return <Shell />;
}

function Shell() {
  const user = useAuth((s) => s.user)!;
  const location = useLocation();
  const pathname = location.split("?")[0] ?? "/";
  const isAdmin = can(user.role, "admin");

  let page: ReactNode = <NotFound />;
  for (const route of ROUTES) {
    const params = matchPath(route.path, pathname);
    if (params) {
      page = route.admin && !isAdmin ? <Forbidden /> : route.render(params);
      break;
    }
  }

  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">dcp</div>
        {NAV.filter((item) => !item.admin || isAdmin).map((item) => {
          const active = item.href === "/" ? pathname === "/" : pathname === item.href || pathname.startsWith(`${item.href}/`);
          return (
            <Link key={item.href} href={item.href} className={active ? "nav-item active" : "nav-item"}>
              {item.label}
            </Link>
          );
        })}
        <div className="sidebar-footer">
          <LiveEvents />
          <div className="whoami" data-testid="whoami">
            <span>{user.username}</span> <span className="badge badge-info">{user.role}</span>
          </div>
          <Link href="/account" className="nav-item small">
            Change password
          </Link>
          <button type="button" className="link" onClick={() => void useAuth.getState().logout().then(() => navigate("/", { replace: true }))}>
            Sign out
          </button>
        </div>
      </nav>
      <main className="content">{pathname === "/account" ? <PasswordChangePage /> : page}</main>
      <Toasts />
    </div>
  );
}

function NotFound() {
  return (
    <div className="empty">
      <h1>Not found</h1>
      <p>
        This page does not exist. <Link href="/">Go to the dashboard</Link>.
      </p>
    </div>
  );
}

function Forbidden() {
  return (
    <div className="empty">
      <h1>Not allowed</h1>
      <p>Only admins can see this page.</p>
    </div>
  );
}
