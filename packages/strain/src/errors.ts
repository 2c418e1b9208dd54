/** An input file that can't be used; the message names the file and what is wrong. */
export class StrainFileError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field}: ${detail}`);
    this.name = "StrainFileError";
  }
}
