// The inspection rules a method configures: the schemas are part of the API contract (@labtrace/protocols/api).
import { parseWith } from '@labtrace/protocols';
import { ruleSetSchema, type Rule } from '@labtrace/protocols/api';

export {
  SEVERITIES,
  SEVERITY_RANK,
  limitsRuleSchema,
  rateOfChangeRuleSchema,
  stuckRuleSchema,
  driftRuleSchema,
  missingDataRuleSchema,
  qualityRuleSchema,
  instrumentStatusRuleSchema,
  ruleSchema,
  ruleSetSchema,
  RULE_KINDS,
} from '@labtrace/protocols/api';
export type { Severity, Rule, RuleKind, RuleOf } from '@labtrace/protocols/api';

/** Parses a method's rules, or throws E_CONFIG listing every problem by path (`rules: [2].maxGapMs: ...`). */
export function parseRules(input: unknown, source = 'rules'): Rule[] {
  return parseWith(ruleSetSchema, input, source);
}
