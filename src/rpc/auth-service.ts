import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { LoginService } from "../login/login-service.js";
import type { LoginLog } from "../login/ports.js";
import { authCalls } from "./auth-calls.js";
import { clientKey } from "./client-context.js";
import { toConnectError } from "./errors.js";

/** A thin adapter: Connect messages in, the login core, Connect messages or errors out. */
export function authServiceImpl(login: LoginService, log: LoginLog): ServiceImpl<typeof AuthService> {
  const calls = authCalls(login);
  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toConnectError(err, log);
    }
  }
  return {
    sendOtp: (req, ctx) => call(() => calls.sendOtp(req, client(ctx))),
    verifyOtp: (req, ctx) => call(() => calls.verifyOtp(req, client(ctx))),
    refreshToken: (req, ctx) => call(() => calls.refreshToken(req, client(ctx))),
    logout: (req, ctx) => call(() => calls.logout(req, client(ctx))),
  };
}

function client(ctx: HandlerContext) {
  return ctx.values.get(clientKey);
}
