import { BalanceModel } from './balance.js';
import { ClimateChamberModel } from './climate-chamber.js';
import type { SignalModel } from './model.js';
import { PressureCalibratorModel } from './pressure-calibrator.js';
import { UniversalTestingMachineModel } from './universal-testing-machine.js';

export const MODEL_KINDS = ['climate-chamber', 'universal-testing-machine', 'pressure-calibrator', 'balance', 'constant'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/** Serves whatever is pinned (zero until then). */
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
    case 'pressure-calibrator':
      return new PressureCalibratorModel(now, seed);
    case 'balance':
      return new BalanceModel(now, seed);
    case 'constant':
      return new ConstantModel();
  }
}

export type { SignalModel, ChannelValues } from './model.js';
