// Minimal typings for cli-progress 3.x (the package ships none and @types/cli-progress is not
// installed): only what the worker's progress display uses.
declare module "cli-progress" {
  export interface Options {
    format?: string;
    stream?: NodeJS.WritableStream;
    fps?: number;
    barsize?: number;
    hideCursor?: boolean;
    clearOnComplete?: boolean;
    stopOnComplete?: boolean;
    autopadding?: boolean;
    emptyOnZero?: boolean;
    gracefulExit?: boolean;
    barCompleteChar?: string;
    barIncompleteChar?: string;
  }

  export interface Preset {
    barCompleteChar: string;
    barIncompleteChar: string;
    format?: string;
  }

  export class SingleBar {
    constructor(options: Options, preset?: Preset);
    start(total: number, startValue: number, payload?: object): void;
    update(value: number, payload?: object): void;
    update(payload: object): void;
    increment(step?: number, payload?: object): void;
    setTotal(total: number): void;
    getTotal(): number;
    stop(): void;
  }

  export class MultiBar {
    constructor(options: Options, preset?: Preset);
    create(total: number, startValue: number, payload?: object, barOptions?: Options): SingleBar;
    remove(bar: SingleBar): boolean;
    update(): void;
    log(data: string): void;
    stop(): void;
  }

  export const Presets: {
    legacy: Preset;
    rect: Preset;
    shades_classic: Preset;
    shades_grey: Preset;
  };

  const cliProgress: {
    SingleBar: typeof SingleBar;
    MultiBar: typeof MultiBar;
    Presets: typeof Presets;
  };
  export default cliProgress;
}
