import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { LoginService } from "../login/login-service.js";
import { OTP_SENT_MESSAGE } from "../login/model.js";
import type { LoginLog } from "../login/ports.js";
import type { SessionService } from "../login/session-service.js";
import { clientKey } from "./client-context.js";
import { toConnectError } from "./errors.js";
import { sessionHandlers } from "./session-handlers.js";

/** A thin adapter: Connect messages in, the login core, Connect messages or errors out. */
export function authServiceImpl(
  login: LoginService,
  log: LoginLog,
  sessions?: SessionService,
): ServiceImpl<typeof AuthService> {
  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toConnectError(err, log);
    }
  }
  return {
    async sendOtp(req, ctx) {
      const sent = await call(() => login.sendOtp(req.phone, client(ctx)));
      return {
        message: OTP_SENT_MESSAGE,
        phone: sent.phone,
        expiresInSeconds: sent.expiresInSeconds,
        codeLength: sent.codeLength,
      };
    },
    async verifyOtp(req, ctx) {
      const s = await call(() => login.verifyOtp(req.phone, req.otp, client(ctx), req.deviceName));
      return {
        accessToken: s.accessToken,
        refreshToken: s.refreshToken,
        tokenType: "bearer",
        expiresIn: s.expiresIn,
        user: {
          id: BigInt(s.user.id),
          phone: s.user.phone,
          name: s.user.name,
          role: s.user.role,
          isPhoneVerified: s.user.isPhoneVerified,
        },
      };
    },
    async refreshToken(req, ctx) {
      const p = await call(() => login.refresh(req.refreshToken, client(ctx)));
      return {
        accessToken: p.accessToken,
        refreshToken: p.refreshToken,
        tokenType: "bearer",
        expiresIn: p.expiresIn,
      };
    },
    async logout(req) {
      await call(() => login.logout(req.refreshToken));
      return {};
    },
    ...sessionHandlers(sessions, call),
  };
}

function client(ctx: HandlerContext) {
  return ctx.values.get(clientKey);
}
