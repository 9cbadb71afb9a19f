// A block's proving lifecycle as a state machine: allowed transitions only.
import { InvariantError } from "./errors.ts";

export const stages = [
  "auction_open",
  "committed",
  "proving",
  "proven",
  "paid",
  "unclaimed",
  "deadline_missed",
  "open_proving",
  "expired",
] as const;

export type Stage = (typeof stages)[number];

/** Each stage by name, so code spells a stage once (here) and the compiler checks the rest. */
export const STAGE = {
  auction_open: "auction_open",
  committed: "committed",
  proving: "proving",
  proven: "proven",
  paid: "paid",
  unclaimed: "unclaimed",
  deadline_missed: "deadline_missed",
  open_proving: "open_proving",
  expired: "expired",
} as const satisfies { [S in Stage]: S };

/** The stages in which a block's jobs are leased: the winner's `proving`, anyone's `open_proving`. */
export const PROVING_STAGES = [STAGE.proving, STAGE.open_proving] as const;
export type ProvingStage = (typeof PROVING_STAGES)[number];

export const transitions: Readonly<Record<Stage, readonly Stage[]>> = {
  auction_open: ["committed", "unclaimed"],
  committed: ["proving"],
  proving: ["proven", "deadline_missed"],
  proven: ["paid"],
  paid: [],
  unclaimed: ["open_proving"],
  deadline_missed: ["open_proving"],
  open_proving: ["proven", "expired"],
  // Nobody proved it in open proving within OPEN_PROVING_WINDOW_MS: its reward goes back to the
  // sequencer (open-proving.ts). Final.
  expired: [],
};

export function canTransition(from: Stage, to: Stage): boolean {
  return transitions[from].includes(to);
}

export type StageTimes = Partial<Record<Stage, number>>;

/**
 * Returns the new stage timestamps, or throws InvariantError when the transition is not allowed
 * (callers move blocks only along the table; anything else is a bug).
 */
export function advanceStage(from: Stage, to: Stage, times: StageTimes, atMs: number): StageTimes {
  if (!canTransition(from, to)) {
    throw new InvariantError(`a block cannot move from ${from} to ${to}`);
  }
  return { ...times, [to]: atMs };
}

/** A stage a block never leaves: `paid`, `expired`. */
export const isFinalStage = (stage: Stage): boolean => transitions[stage].length === 0;

export const isProvingStage = (stage: Stage): stage is ProvingStage =>
  (PROVING_STAGES as readonly Stage[]).includes(stage);
