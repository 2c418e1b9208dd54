/** Runs a command body, turning errors into a message on stderr and an exit code, never a stack trace for user errors. */
export async function run(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const err = e as Error;
    const userError = err.name === "CampaignError" || err.name === "StrainFileError" || /^(campaign|cannot reach Redis|no campaign)/.test(err.message);
    process.stderr.write(`timeslide: ${err.message}\n`);
    if (!userError && process.env.TIMESLIDE_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err.name === "CampaignError" ? 2 : 1;
  }
}
