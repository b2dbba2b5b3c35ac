// One error type for everything the package refuses, carrying a reason code of spec §13.

/** An AEP2 refusal: `code` is a reason code of spec §13 (or `payer_refused` for a local rule). */
export class Aep2Error extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "Aep2Error";
    this.code = code;
  }
}
