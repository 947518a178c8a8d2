/**
 * The package's public surface for callers: the generated contract, a typed client, and local verification of
 * access tokens. Nothing here is imported by the server itself.
 */
export * from "../gen/auth/v1/auth_pb.js";
export { authInterceptor, authUser, authUserKey } from "./client/auth-interceptor.js";
export {
  type AuthClient,
  type AuthClientOptions,
  type AuthProtocol,
  createAuthClient,
} from "./client/create-client.js";
export {
  type AuthUser,
  createTokenVerifier,
  MAX_CLOCK_TOLERANCE_SECONDS,
  TokenVerificationError,
  type TokenVerifier,
  type TokenVerifierOptions,
  type VerifiedToken,
} from "./client/token-verifier.js";
