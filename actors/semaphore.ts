// A counting semaphore: bounds how many actors recover at once after a restart, so waking
// thousands of SKU/dates cannot exhaust the database pool.

export class Semaphore {
  private waiting: (() => void)[] = [];
  private held = 0;
  constructor(private readonly permits: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.held >= this.permits) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.held++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.held--;
    }
  }
}
