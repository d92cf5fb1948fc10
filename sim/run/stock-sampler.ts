// Samples the live stock of a run's SKU/dates from the ops route while the run goes, for the
// report's "stock draining" chart. Bounded: at most `series_max` SKU/dates, one round at a time.
import type { EngineReader } from '../verdict/engine-view.ts';
import type { StockSeries } from './results.ts';

export interface StockSamplerOptions {
  interval_ms: number;
  series_max: number;
  /** Run time in ms (the same clock as the results). */
  clock_ms: () => number;
}

export class StockSampler {
  private readonly series: StockSeries[];
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();

  constructor(
    private readonly reader: EngineReader,
    stock: readonly { skuId: string; date: string }[],
    private readonly options: StockSamplerOptions,
  ) {
    this.series = stock.slice(0, options.series_max).map(({ skuId, date }) => ({ skuId, date, samples: [] }));
  }

  start(): void {
    const tick = () => {
      this.round = this.sample().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.options.interval_ms);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** One last sample, then no more. */
  async stop(): Promise<StockSeries[]> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.round;
    await this.sample();
    return this.series;
  }

  private async sample(): Promise<void> {
    await Promise.all(
      this.series.map(async (s) => {
        const figures = await this.reader.inventory(s.skuId, s.date).catch(() => undefined);
        if (figures) s.samples.push({ t_ms: this.options.clock_ms(), ...figures });
      }),
    );
  }
}
