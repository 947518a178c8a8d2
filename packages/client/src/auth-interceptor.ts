import {
  Code,
  ConnectError,
  createContextKey,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { type AuthUser, TokenVerificationError, type TokenVerifier } from "./token-verifier.js";

/** The verified caller, set by `authInterceptor`; `undefined` where no interceptor ran. */
export const authUserKey = createContextKey<AuthUser | undefined>(undefined, {
  description: "the user verified from the request's access token",
});

/**
 * A Connect server interceptor for internal services: reads `Authorization: Bearer <access token>`, verifies it
 * with `verifier`, and puts `{ id, phone, role }` under `authUserKey` in the handler context. A missing or bad
 * token is refused with Unauthenticated before the handler runs; an unreachable key set with Unavailable.
 */
export function authInterceptor(verifier: TokenVerifier): Interceptor {
  return (next) => async (req) => {
    const token = bearerToken(req.header.get("authorization"));
    if (token === undefined) {
      throw new ConnectError("missing bearer access token", Code.Unauthenticated);
    }
    try {
      const { id, phone, role } = await verifier.verify(token);
      req.contextValues.set(authUserKey, { id, phone, role });
    } catch (err) {
      if (err instanceof TokenVerificationError) {
        throw new ConnectError(
          err.message,
          err.kind === "unavailable" ? Code.Unavailable : Code.Unauthenticated,
        );
      }
      throw err;
    }
    return next(req);
  };
}

/** The verified caller in a handler behind `authInterceptor`; Unauthenticated if there is none. */
export function authUser(ctx: HandlerContext): AuthUser {
  const user = ctx.values.get(authUserKey);
  if (!user) throw new ConnectError("not authenticated", Code.Unauthenticated);
  return user;
}

function bearerToken(header: string | null): string | undefined {
  const m = /^Bearer +([^\s]+) *$/i.exec(header ?? "");
  return m?.[1];
}
