// The development login page: phone -> code -> user, over Connect from the browser (@connectrpc/connect-web).
// `?api=http://host:port` points it at a service on another origin (CORS); by default it calls its own origin.
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AuthService } from "../gen/auth/v1/auth_pb.js";

const api = new URLSearchParams(location.search).get("api") ?? location.origin;
const auth = createClient(AuthService, createConnectTransport({ baseUrl: api }));

const el = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
};
const steps = { phone: el("phone-step"), code: el("code-step"), "signed-in": el("user-step") };
type Step = keyof typeof steps;

let phone = "";
let refreshToken = "";

function show(step: Step): void {
  for (const [name, node] of Object.entries(steps)) node.hidden = name !== step;
  // Tests (and curious humans in devtools) read where the page is from here.
  document.body.dataset.state = step;
}

function showError(err: unknown): void {
  const e = el("error");
  if (err instanceof ConnectError) {
    e.textContent = err.rawMessage;
    e.dataset.code = String(err.code);
  } else {
    e.textContent = String(err);
    e.dataset.code = "";
  }
}

/** Runs one user action with the page's buttons disabled, showing any failure. */
async function act(form: HTMLElement, fn: () => Promise<void>): Promise<void> {
  const buttons = form.querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  el("error").textContent = "";
  el("notice").textContent = "";
  try {
    await fn();
  } catch (err) {
    showError(err);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** The `exp` claim of a JWT, read without verifying: the page only displays it. */
function expiryOf(token: string): Date {
  const payload = token.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return new Date((JSON.parse(json) as { exp: number }).exp * 1000);
}

steps.phone.addEventListener("submit", (ev) => {
  ev.preventDefault();
  void act(steps.phone, async () => {
    const sent = await auth.sendOtp({ phone: el<HTMLInputElement>("phone").value });
    phone = sent.phone;
    el("sent-to").textContent = sent.phone;
    el<HTMLInputElement>("code").maxLength = sent.codeLength || 10;
    show("code");
    el("code").focus();
  });
});

// A code that did not arrive, or expired: ask for another one to the same number. The old one stops working.
el("resend").addEventListener("click", () => {
  void act(steps.code, async () => {
    await auth.sendOtp({ phone });
    el<HTMLInputElement>("code").value = "";
    el("notice").textContent = `A new code was sent to ${phone}.`;
    el("code").focus();
  });
});

// A typo in the number: back to the first step with what was typed, ready to correct.
el("change-number").addEventListener("click", () => {
  el<HTMLInputElement>("code").value = "";
  el("error").textContent = "";
  el("notice").textContent = "";
  show("phone");
  el("phone").focus();
});

steps.code.addEventListener("submit", (ev) => {
  ev.preventDefault();
  void act(steps.code, async () => {
    const res = await auth.verifyOtp({ phone, otp: el<HTMLInputElement>("code").value.trim() });
    refreshToken = res.refreshToken;
    el("user-id").textContent = String(res.user?.id ?? "");
    el("user-phone").textContent = res.user?.phone ?? "";
    el("user-name").textContent = res.user?.name ?? "";
    const expires = expiryOf(res.accessToken);
    el("expires").textContent = expires.toLocaleString();
    el("expires").dataset.epochSeconds = String(expires.getTime() / 1000);
    show("signed-in");
  });
});

el("logout").addEventListener("click", () => {
  void act(steps["signed-in"], async () => {
    await auth.logout({ refreshToken });
    refreshToken = "";
    el<HTMLInputElement>("code").value = "";
    show("phone");
  });
});

show("phone");
