/**
 * Runs async tasks one after the other, in the order they were given.
 *
 * JupyterLab starts every cell of "Run All" at once; the server queues entries
 * in the order their requests arrive, so the requests of one notebook are sent
 * one at a time to keep the notebook's order.
 */
export class SerialChain {
  /**
   * Run `task` once every task given before it has settled.
   */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this._tail.then(task, task);
    // The chain goes on whether the task succeeds or fails.
    this._tail = result.then(
      () => undefined,
      () => undefined
    );
    return result;
  }

  private _tail: Promise<unknown> = Promise.resolve();
}
