/**
 * The values the login kernel works with. Plain data: every transport and adapter speaks these, and nothing
 * here knows about Connect, HTTP, Redis or an SMS provider.
 */

/** Who is asking: the transports fill this in; limits (per IP) are keyed on it. */
export interface Client {
  readonly ip: string;
  /** The request's User-Agent, which names a session when the login gives no device name. */
  readonly userAgent?: string | undefined;
  /**
   * The socket peer itself is on this machine (127.0.0.0/8, ::1) and no proxy header came with the request.
   * Never true for a forwarded address: a header is the caller's word, the socket is not. In development
   * (nothing real is sent) such callers skip the request limits; see `AbuseGuard`.
   */
  readonly loopback?: boolean;
  /**
   * The id the request is answered and logged under (`x-request-id`): every line written while serving it
   * carries it as `reqId`. Passed along rather than kept in an AsyncLocalStorage, whose promise hooks cost ~10 %
   * of a request's CPU on Node 20 (README *Performance*).
   */
  readonly requestId?: string | undefined;
}

/**
 * A phone number as the kernel knows it once parsed: E.164 for keys and providers, and what the number itself
 * says about where an SMS goes (for the SMS-pumping caps and the destination rules). Built once per request by
 * the `PhoneParser` port and passed along, so nothing downstream parses the number again.
 */
export interface Phone {
  /** "+919876543210". */
  readonly e164: string;
  /** ISO 3166 region ("IN"); undefined for non-geographic numbers (+800, +882, …). */
  readonly region: string | undefined;
  /** The country calling code, without "+" ("91"). */
  readonly callingCode: string;
  /** The number without its calling code ("9876543210"). */
  readonly nationalNumber: string;
  /** libphonenumber's type ("MOBILE", "FIXED_LINE_OR_MOBILE", …); undefined when the ranges don't tell. */
  readonly type: string | undefined;
}

/**
 * "+91******3210": the calling code and the last four digits, whatever the country. The one masking rule: logs
 * of a raw E.164 string use it too (`maskPhone` in src/log.ts).
 */
export function maskedPhone(phone: Pick<Phone, "callingCode" | "nationalNumber">): string {
  const hidden = Math.max(0, phone.nationalNumber.length - 4);
  return `+${phone.callingCode}${"*".repeat(hidden)}${phone.nationalNumber.slice(hidden)}`;
}

export interface User {
  /** Numeric id from a counter; never reused. */
  readonly id: number;
  /** E.164. */
  readonly phone: string;
  readonly name: string;
  readonly role: string;
  readonly isPhoneVerified: boolean;
}

/** The record a first login creates, so every store agrees on defaults. */
export function newUser(id: number, phone: string): User {
  return { id, phone, name: `User ${phone.slice(-4)}`, role: "consumer", isPhoneVerified: true };
}

/** The seed's confirmation text, kept for its clients on every transport. */
export const OTP_SENT_MESSAGE = "OTP sent successfully";

export interface SentCode {
  /** E.164. */
  readonly phone: string;
  readonly expiresInSeconds: number;
  readonly codeLength: number;
  /** The verification the code belongs to (a resend continues the pending one). */
  readonly verificationId: string;
}

export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
}

/** A completed login: the token pair and the user it belongs to. */
export interface Session extends TokenPair {
  readonly user: User;
}

/** What a refresh token string itself tells: whose it is, which family, and the hash to look up. */
export interface TokenRef {
  readonly userId: number;
  readonly family: string;
  readonly hash: string;
}

// ---- sessions ------------------------------------------------------------------------------------------

/** One login of a user and the refresh tokens rotated from it (a refresh-token family), as the user sees it. */
export interface SessionInfo {
  /** The family id: the `sid` claim of the session's access tokens. */
  readonly id: string;
  /** The device name given at login, else the User-Agent; may be empty. */
  readonly label: string;
  /** The client IP of the last use (login or refresh). */
  readonly ip: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

/** A session in a listing: `current` for the session of the access token that asked. */
export interface ListedSession extends SessionInfo {
  readonly current: boolean;
}

const MAX_LABEL_LENGTH = 128;

/**
 * The label a new session is listed under: the device name the client chose, else its User-Agent. Control
 * characters go (a label is shown to the user and written to logs) and it is cut to 128 characters, so a
 * client cannot make a session record of any size.
 */
export function sessionLabel(deviceName: string | undefined, userAgent: string | undefined): string {
  const clean = (s: string | undefined) =>
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
    [...(s ?? "").replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").trim()].slice(0, MAX_LABEL_LENGTH).join("");
  return clean(deviceName) || clean(userAgent);
}
