// The session: who is signed in and their access token. The access token lives in this
// store (memory) only; the refresh token is the server's HttpOnly cookie, which this code
// never sees. Tokens are renewed a minute before they expire, and on a refused token.
import { create } from "zustand";
import { api, ApiClient, ApiError } from "../api/client";
import { paths } from "../api/paths";
import type { Role, TokenResponse, UserView } from "../api/types";
import { useEvents } from "./events";
import { resetHosts } from "./hosts";

export type AuthStatus = "loading" | "signed-out" | "signed-in";

export interface AuthState {
  status: AuthStatus;
  user: UserView | null;
  accessToken: string | null;
  /** Epoch milliseconds at which the access token expires. */
  expiresAt: number;
  /** Why the user was signed out, shown on the login page. */
  notice: string | null;
  restore(): Promise<void>;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
  changePassword(current: string, next: string): Promise<void>;
  renew(): Promise<boolean>;
  expire(notice?: string): void;
}

/** Renew this long before the access token expires. */
const RENEW_MARGIN_MS = 60_000;

/** Asks the server to keep the refresh token in its HttpOnly cookie, out of the body. */
const COOKIE_ONLY = { "x-dcp-refresh-cookie-only": "1" };

let renewTimer: ReturnType<typeof setTimeout> | undefined;
let renewing: Promise<boolean> | null = null;
/** Counts sign-outs: a login or refresh answered after one is dropped. */
let session = 0;

/** Runs `task` with a lock shared by every tab, so two tabs never spend the same cookie. */
async function acrossTabs<T>(task: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (locks?.request) return locks.request("dcp-token-refresh", task) as Promise<T>;
  return task();
}

export function createAuthStore(client: ApiClient) {
  const store = create<AuthState>()((set, get) => {
    const signIn = (tokens: TokenResponse) => {
      const expiresAt = Date.now() + tokens.expires_in * 1000;
      set({ status: "signed-in", user: tokens.user, accessToken: tokens.access_token, expiresAt, notice: null });
      clearTimeout(renewTimer);
      // A minute early, or at three quarters of a short lifetime; a late timer (a throttled
      // background tab) is covered by the renewal on a refused token.
      const lifetime = tokens.expires_in * 1000;
      const delay = Math.max(1_000, Math.min(lifetime - RENEW_MARGIN_MS, lifetime * 0.75));
      renewTimer = setTimeout(() => void get().renew(), delay);
    };

    const signOut = (notice: string | null) => {
      session++;
      clearTimeout(renewTimer);
      // What this user could see is not left for the next one in this tab.
      useEvents.getState().reset();
      resetHosts();
      set({ status: "signed-out", user: null, accessToken: null, expiresAt: 0, notice });
    };

    return {
      status: "loading",
      user: null,
      accessToken: null,
      expiresAt: 0,
      notice: null,

      async restore() {
        const ok = await get().renew();
        if (!ok && get().status === "loading") signOut(null);
      },

      async login(username, password) {
        const generation = session;
        const tokens = await client.request<TokenResponse>(paths.auth.login(), {
          method: "POST",
          body: { username, password },
          anonymous: true,
          headers: COOKIE_ONLY,
        });
        if (generation === session) signIn(tokens);
      },

      async logout() {
        // A refresh in flight would sign the user in again after this.
        await renewing?.catch(() => false);
        try {
          await client.request<void>(paths.auth.logout(), { method: "POST", body: {} });
        } catch {
          // The session may already be over; the user is signed out either way.
        }
        signOut(null);
      },

      async changePassword(current, next) {
        const user = await client.post<UserView>(paths.auth.password(), {
          current_password: current,
          new_password: next,
        });
        // Changing the password ends the other sessions; this one carries on renewed.
        set({ user });
        await get().renew();
      },

      renew() {
        const generation = session;
        renewing ??= acrossTabs(async () => {
          try {
            const tokens = await client.request<TokenResponse>(paths.auth.refresh(), {
              method: "POST",
              body: {},
              anonymous: true,
              headers: COOKIE_ONLY,
            });
            // Signed out meanwhile: this session is over, whatever the server says.
            if (generation !== session) return false;
            signIn(tokens);
            return true;
          } catch (error) {
            if (error instanceof ApiError && error.status === 401) {
              if (get().status === "signed-in") signOut("Your session has ended. Please sign in again.");
              return false;
            }
            // A network failure or an unavailable server does not end the session.
            if (get().status === "loading") signOut(null);
            return false;
          }
        }).finally(() => {
          renewing = null;
        });
        return renewing;
      },

      expire(notice = "Your session has ended. Please sign in again.") {
        if (get().status === "signed-in") signOut(notice);
      },
    };
  });

  client.useTokens({
    accessToken: () => store.getState().accessToken,
    renew: () => store.getState().renew(),
    expired: () => store.getState().expire(),
  });
  return store;
}

export const useAuth = createAuthStore(api);

/** What a role may do in the UI; the server enforces the same rules. */
export function can(role: Role | string | undefined, action: "mutate" | "admin"): boolean {
  if (action === "admin") return role === "admin";
  return role === "admin" || role === "operator";
}

export function useRole(): Role | undefined {
  return useAuth((state) => state.user?.role as Role | undefined);
}
