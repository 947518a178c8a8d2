import type { ConnectRouter } from "@connectrpc/connect";
import { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { LoginService } from "../login/login-service.js";
import type { LoginLog } from "../login/ports.js";
import type { SessionService } from "../login/session-service.js";
import { type AuthServiceExtras, authServiceImpl } from "./auth-service.js";

/** The same routes feed the real server (connectNodeAdapter) and in-memory tests (createRouterTransport). */
export function routes(
  login: LoginService,
  log: LoginLog,
  sessions?: SessionService,
  extras: AuthServiceExtras = {},
) {
  return (router: ConnectRouter) => {
    router.service(AuthService, authServiceImpl(login, log, sessions, extras));
  };
}
