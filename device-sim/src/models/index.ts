import { ClimateChamberModel } from './climate-chamber.js';
import type { SignalModel } from './model.js';
import { UniversalTestingMachineModel } from './universal-testing-machine.js';

export const MODEL_KINDS = ['climate-chamber', 'universal-testing-machine', 'constant'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

class ConstantModel implements SignalModel {
  readonly kind = 'constant';
  step(): Record<string, number> {
    return {};
  }
}

export function createModel(kind: ModelKind, now: number, seed?: number): SignalModel {
  switch (kind) {
    case 'climate-chamber':
      return new ClimateChamberModel(now, seed);
    case 'universal-testing-machine':
      return new UniversalTestingMachineModel(now, seed);
    case 'constant':
      return new ConstantModel();
  }
}

export type { SignalModel, ChannelValues } from './model.js';
