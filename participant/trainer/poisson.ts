/**
 * Poisson sampling for DP-SGD: every step takes each training example independently with probability q.
 * The subsampled-Gaussian accountant (Mironov, Talwar, Zhang 2019) assumes exactly this; shuffled
 * fixed-size batches accounted as if Poisson-sampled are not covered by it.
 *
 * The coin flips come from the operating system's CSPRNG (crypto/dp RandomWords over node:crypto), never
 * from the task's shuffling seed or Math.random: a coordinator that knows training.seed must not learn
 * which records a step used. Each flip is exact: the double q is the rational m / 2^e, compared with
 * uniform words digit by digit (the first 32-bit word decides unless it equals q's first digit).
 */
import { RandomWords } from '../../crypto/dp/index.js';
import { invalidArgument } from './errors.js';

const TWO_POW_32 = 2 ** 32;

/** The exact value of a double in (0, 1] as numerator / 2^k. */
function exactFraction(q: number): { numerator: bigint; denominator: bigint } {
  let numerator = q;
  let exponent = 0;
  while (!Number.isInteger(numerator)) {
    numerator *= 2; // exact: a power-of-two scaling of a double in (0, 1]
    exponent++;
  }
  return { numerator: BigInt(numerator), denominator: 1n << BigInt(exponent) };
}

export class PoissonSampler {
  private readonly firstDigit: number;
  private readonly fraction: { numerator: bigint; denominator: bigint };

  /** @param rate q in (0, 1]; @param words the random source (default: node:crypto) */
  constructor(
    readonly rate: number,
    private readonly words: RandomWords = new RandomWords(),
  ) {
    if (!(typeof rate === 'number' && rate > 0 && rate <= 1)) throw invalidArgument('INVALID_DP_PARAMETER', `samplingRate must be in (0, 1], got ${String(rate)}`);
    this.fraction = exactFraction(rate);
    this.firstDigit = Math.floor(rate * TWO_POW_32); // exact: power-of-two scaling, then floor
  }

  /** One coin of probability exactly q. */
  private take(): boolean {
    if (this.rate === 1) return true;
    const word = this.words.word();
    if (word !== this.firstDigit) return word < this.firstDigit;
    return this.words.bernoulliBigFrom(this.fraction.numerator, this.fraction.denominator, word);
  }

  /**
   * Writes the indices of the examples of one step into `out` (ascending) and returns how many: each of
   * 0..count-1 independently with probability q. `out` must hold `count` entries.
   */
  sample(count: number, out: Int32Array): number {
    if (out.length < count) throw invalidArgument('INVALID_ARGUMENT', `out holds ${out.length} indices; expected at least ${count}`);
    let taken = 0;
    for (let i = 0; i < count; i++) if (this.take()) out[taken++] = i;
    return taken;
  }
}
