import { ByteTokenizer, generate, loadCheckpoint } from '@strata/core';
import type { ParsedArgs } from '../args.js';
import { resolveCheckpointDir } from '../run-training.js';
import { setupRuntime } from '../setup.js';

/** `strata generate`: stream sampled text to stdout. */
export async function run(args: ParsedArgs): Promise<number> {
  await setupRuntime(args);
  const { checkpointDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const { model } = await loadCheckpoint(checkpointDir);
  try {
    const tokenizer = new ByteTokenizer();
    const prompt = String(args.prompt ?? '');
    const decoder = tokenizer.decoder();
    if (!args.json) process.stdout.write(prompt);
    const ids = await generate(model, Array.from(tokenizer.encode(prompt)), {
      maxTokens: args['max-tokens'] as number,
      temperature: args.temperature as number,
      topK: args['top-k'] as number,
      seed: args.seed as number,
      ...(args.json ? {} : { onToken: (id: number) => process.stdout.write(decoder.push(id)) }),
    });
    if (args.json)
      process.stdout.write(
        `${JSON.stringify({ prompt, completion: tokenizer.decode(ids), tokens: ids.length })}\n`,
      );
    else process.stdout.write(`${decoder.flush()}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}
