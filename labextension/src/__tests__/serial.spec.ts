import { describe, expect, it } from 'vitest';
import { SerialChain } from '../queue/serial';

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('SerialChain', () => {
  it('runs tasks one at a time in the order given, even after a failure', async () => {
    const chain = new SerialChain();
    const log: string[] = [];
    const task =
      (name: string, ms: number, fail = false) =>
      async () => {
        log.push(`start ${name}`);
        await sleep(ms);
        log.push(`end ${name}`);
        if (fail) {
          throw new Error(name);
        }
        return name;
      };
    const results = await Promise.allSettled([
      chain.run(task('a', 30)),
      chain.run(task('b', 1, true)),
      chain.run(task('c', 10))
    ]);
    expect(log).toEqual([
      'start a',
      'end a',
      'start b',
      'end b',
      'start c',
      'end c'
    ]);
    expect(results.map(r => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled'
    ]);
  });
});
