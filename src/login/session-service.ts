import { StoreUnavailableError } from "./failures.js";
import type { ListedSession } from "./model.js";
import type { AccessTokenVerifier, Caller, LoginLog, SessionStore } from "./ports.js";
import { accessTokenInvalid, sessionNotFound, storeUnavailable } from "./reasons.js";
import { requestLog } from "./request-log.js";

export interface SessionDeps {
  readonly sessions: SessionStore;
  readonly accessTokens: AccessTokenVerifier;
  readonly log: LoginLog;
}

/**
 * A user's view of their own sessions: list them, end one, all others, or all. Every call is authenticated by
 * the caller's access token (`Authorization: Bearer`), and works only inside the user the token names, so no
 * id, guessed or seen, reaches another user's session. Kept apart from `LoginService`: it shares the stores,
 * not the flows.
 */
export class SessionService {
  constructor(private readonly deps: SessionDeps) {}

  /**
   * The caller's live sessions, most recently used first, the asking one marked `current`. `requestId`, on
   * every method: the request's id, for the log lines written while serving it.
   */
  async list(bearer: string | undefined, requestId?: string): Promise<ListedSession[]> {
    const caller = await this.#caller(bearer);
    const all = await this.#store(this.deps.sessions.list(caller.userId), requestId);
    // A revoked session's access token lives on until it expires; it must not keep seeing the account.
    if (!all.some((s) => s.id === caller.sessionId)) throw accessTokenInvalid();
    return all
      .map((s) => ({ ...s, current: s.id === caller.sessionId }))
      .sort((a, b) => b.lastUsedAt - a.lastUsedAt || a.id.localeCompare(b.id));
  }

  /** Ends one of the caller's sessions (the caller's own included: a logout by session id). */
  async revoke(bearer: string | undefined, sessionId: string, requestId?: string): Promise<void> {
    const caller = await this.#caller(bearer);
    const outcome = await this.#store(
      this.deps.sessions.revoke(caller.userId, caller.sessionId, sessionId.trim()),
      requestId,
    );
    if (outcome === "caller_revoked") throw accessTokenInvalid();
    if (outcome === "not_found") throw sessionNotFound();
    requestLog(this.deps.log, { requestId }).info({ userId: caller.userId }, "session revoked");
  }

  /** Ends every session of the caller's but the current one; how many. */
  revokeOthers(bearer: string | undefined, requestId?: string): Promise<number> {
    return this.#revokeAll(bearer, true, requestId);
  }

  /** Ends every session of the caller's, the current one too; how many. */
  revokeAll(bearer: string | undefined, requestId?: string): Promise<number> {
    return this.#revokeAll(bearer, false, requestId);
  }

  async #revokeAll(bearer: string | undefined, keepCaller: boolean, requestId?: string): Promise<number> {
    const caller = await this.#caller(bearer);
    const n = await this.#store(
      this.deps.sessions.revokeAll(caller.userId, caller.sessionId, keepCaller),
      requestId,
    );
    if (n === "caller_revoked") throw accessTokenInvalid();
    requestLog(this.deps.log, { requestId }).info(
      { userId: caller.userId, revoked: n, keepCaller },
      "sessions revoked",
    );
    return n;
  }

  async #caller(bearer: string | undefined): Promise<Caller> {
    const token = bearerToken(bearer);
    const caller = token === undefined ? undefined : await this.deps.accessTokens.authenticate(token);
    if (!caller) throw accessTokenInvalid();
    return caller;
  }

  async #store<T>(call: Promise<T>, requestId: string | undefined): Promise<T> {
    try {
      return await call;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      requestLog(this.deps.log, { requestId }).error(
        { err: err.cause ?? err },
        `store unavailable: ${err.message}`,
      );
      throw storeUnavailable();
    }
  }
}

/** The token of an `Authorization: Bearer <token>` header value; undefined for anything else. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return m?.[1];
}
