// Aztec's reward booster: a prover's activity score (raised by proofs, decaying per epoch) maps to
// the shares it holds in a block's prover pool. Everything is integer bigint arithmetic.
//
//   score read in epoch e:  max(0, value - decay * (e - lastEpoch))
//   proof in a new epoch:   value = min(score + increment, maxScore), lastEpoch = e
//   shares(score):          k                                              if score > maxScore
//                           max(k - a * (maxScore - score)^2 / 1e10, minimum)  otherwise
// The division is bigint division (truncating toward zero; the dividend is never negative).

export interface BoosterConfig {
  /** Score added by a proof recorded in a new epoch. */
  increment: bigint;
  /** Ceiling of the score; a score at (or above) it earns k shares. */
  maxScore: bigint;
  /** Steepness of the quadratic penalty below maxScore. */
  a: bigint;
  /** Shares at full score. */
  k: bigint;
  /** Floor of the shares. */
  minimum: bigint;
  /** Score lost per epoch since the last recorded proof. */
  decay: bigint;
}

export interface ActivityScore {
  value: bigint;
  /** Epoch of the last recorded update. */
  epoch: bigint;
}

export const defaultBoosterConfig: Readonly<BoosterConfig> = Object.freeze({
  increment: 125_000n,
  maxScore: 15_000_000n,
  a: 1_000n,
  k: 1_000_000n,
  minimum: 100_000n,
  decay: 100_000n,
});

/** Divisor of the quadratic term: a * (maxScore - score)^2 / 1e10. */
export const BOOSTER_DIVISOR = 10_000_000_000n;

/** Throws RangeError unless every parameter is non-negative and minimum <= k. */
export function assertBoosterConfig(config: BoosterConfig): void {
  for (const key of ["increment", "maxScore", "a", "k", "minimum", "decay"] as const) {
    if (typeof config[key] !== "bigint") throw new RangeError(`booster ${key} must be a bigint`);
    if (config[key] < 0n) throw new RangeError(`booster ${key} must be non-negative`);
  }
  if (config.minimum > config.k) throw new RangeError("booster minimum must not exceed k");
}

function assertState(state: ActivityScore): void {
  if (state.value < 0n) throw new RangeError("activity score value must be non-negative");
  if (state.epoch < 0n) throw new RangeError("activity score epoch must be non-negative");
}

/** The decayed score as read in `currentEpoch`, without recording anything. */
export function activityScoreAt(
  state: ActivityScore,
  currentEpoch: bigint,
  config: BoosterConfig = defaultBoosterConfig,
): bigint {
  assertBoosterConfig(config);
  assertState(state);
  if (currentEpoch < state.epoch) {
    throw new RangeError(`epoch ${currentEpoch} is before the score's epoch ${state.epoch}`);
  }
  const decayed = state.value - config.decay * (currentEpoch - state.epoch);
  return decayed > 0n ? decayed : 0n;
}

/**
 * Records a proof in `currentEpoch`. Within the epoch of the last update (including a fresh
 * { value: 0n, epoch: 0n } in epoch 0) the state is returned unchanged; in a later epoch the
 * score first decays, then gains `increment`, capped at `maxScore`.
 */
export function updateActivityScore(
  state: ActivityScore,
  currentEpoch: bigint,
  config: BoosterConfig = defaultBoosterConfig,
): ActivityScore {
  assertBoosterConfig(config);
  assertState(state);
  if (currentEpoch === state.epoch) return state;
  const raised = activityScoreAt(state, currentEpoch, config) + config.increment;
  // (bigint: no Math.min)
  if (raised > config.maxScore) return { value: config.maxScore, epoch: currentEpoch };
  return { value: raised, epoch: currentEpoch };
}

/** Shares earned by a score: k above maxScore, else the quadratic curve floored at `minimum`. */
export function boosterShares(score: bigint, config: BoosterConfig = defaultBoosterConfig): bigint {
  assertBoosterConfig(config);
  if (score < 0n) throw new RangeError("score must be non-negative");
  if (score > config.maxScore) return config.k;
  const gap = config.maxScore - score;
  const shares = config.k - (config.a * gap * gap) / BOOSTER_DIVISOR;
  return shares > config.minimum ? shares : config.minimum;
}
