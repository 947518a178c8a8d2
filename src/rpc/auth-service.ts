import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { type AuthService, type VerificationSchema, VerificationStatus } from "../../gen/auth/v1/auth_pb.js";
import type { LoginService } from "../login/login-service.js";
import type { LoginLog } from "../login/ports.js";
import { requestLog } from "../login/request-log.js";
import type { SessionService } from "../login/session-service.js";
import type { VerificationService, VerificationView } from "../login/verifications.js";
import { type AuditWatchSettings, auditWatcher } from "./audit-watch.js";
import { authCalls } from "./auth-calls.js";
import { clientKey } from "./client-context.js";
import { toConnectError } from "./errors.js";
import { sessionHandlers } from "./session-handlers.js";

/** What the service needs beyond the login flows: the verification lifecycle and the audit stream. */
export interface AuthServiceExtras {
  readonly verifications?: VerificationService | undefined;
  readonly audit?: AuditWatchSettings | undefined;
}

/** A thin adapter: Connect messages in, the login core, Connect messages or errors out. */
export function authServiceImpl(
  login: LoginService,
  log: LoginLog,
  sessions?: SessionService,
  extras: AuthServiceExtras = {},
): ServiceImpl<typeof AuthService> {
  const calls = authCalls(login);
  const watchAudit = auditWatcher(extras.audit);
  const verifications = () => {
    if (!extras.verifications) throw new Error("no verification service wired");
    return extras.verifications;
  };
  /** Runs a call of the request `ctx` and turns what it throws into a Connect error, logged under its id. */
  async function call<T>(ctx: HandlerContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toConnectError(err, requestLog(log, client(ctx)));
    }
  }
  return {
    sendOtp: (req, ctx) => call(ctx, () => calls.sendOtp(req, client(ctx))),
    verifyOtp: (req, ctx) => call(ctx, () => calls.verifyOtp(req, client(ctx))),
    refreshToken: (req, ctx) => call(ctx, () => calls.refreshToken(req, client(ctx))),
    logout: (req, ctx) => call(ctx, () => calls.logout(req, client(ctx))),
    ...sessionHandlers(sessions, call),
    async getVerification(req, ctx) {
      const v = await call(ctx, () => verifications().get(req.verificationId, client(ctx).requestId));
      return { verification: toMessage(v) };
    },
    async cancelVerification(req, ctx) {
      const v = await call(ctx, () => verifications().cancel(req.verificationId, client(ctx).requestId));
      return { verification: toMessage(v) };
    },
    async *watchAuditEvents(req, ctx) {
      for await (const e of watchAudit(req.fromId, ctx)) {
        yield {
          event: {
            id: e.id,
            timeMs: BigInt(e.timeMs),
            event: e.event,
            verificationId: e.verificationId,
            userId: e.userId,
            phone: e.phone,
            clientIp: e.clientIp,
            reason: e.reason,
          },
        };
      }
    },
  };
}

const STATUS: Record<VerificationView["status"], VerificationStatus> = {
  pending: VerificationStatus.PENDING,
  approved: VerificationStatus.APPROVED,
  canceled: VerificationStatus.CANCELED,
  expired: VerificationStatus.EXPIRED,
  max_attempts_reached: VerificationStatus.MAX_ATTEMPTS_REACHED,
  failed_to_send: VerificationStatus.FAILED_TO_SEND,
};

function toMessage(v: VerificationView): MessageInitShape<typeof VerificationSchema> {
  return {
    id: v.id,
    status: STATUS[v.status],
    phone: v.maskedPhone,
    channel: v.channel,
    createdAtMs: BigInt(v.createdAtMs),
    expiresAtMs: BigInt(v.expiresAtMs),
    checkAttemptsUsed: v.attemptsUsed,
    checkAttemptsLeft: v.attemptsLeft,
    sendAttempts: v.sendAttempts.map((a) => ({
      provider: a.provider,
      messageId: a.messageId,
      sentAtMs: BigInt(a.sentAtMs),
      deliveryStatus: a.deliveryStatus,
      errorCode: a.errorCode,
    })),
  };
}

function client(ctx: HandlerContext) {
  return ctx.values.get(clientKey);
}
