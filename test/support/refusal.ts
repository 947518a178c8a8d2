import { LoginError } from "../../src/login/reasons.js";

/** The LoginError a login step was refused with; fails the test if it succeeded or threw anything else. */
export async function refusal(p: Promise<unknown>): Promise<LoginError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LoginError) return err;
    throw err;
  }
  throw new Error("expected a LoginError");
}
