// One error type for the whole client: a stable snake_case code and one sentence a person
// can act on. Server text never reaches a message unless it went through cleanText().
export class Nt2Error extends Error {
  constructor(code, message, { status = null, cause = undefined } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "Nt2Error";
    this.code = code;
    this.status = status;
  }
}

// C0/C1 controls and the bidi overrides/isolates: a hostile server must not be able to
// reorder or hide what a person reads (docs/CRYPTO.md, threat model).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function cleanText(value, max = 200) {
  const text = String(value ?? "").replace(UNSAFE, "");
  return text.length > max ? text.slice(0, max) + "…" : text;
}
