// Benchmark parameters from the environment: a bad value stops the benchmark at once (exit 2) with a
// message naming the variable and the range it takes.

/** The readers of one benchmark's parameters; `bench` names it in the messages. */
export function envReader(bench) {
  const read = (name, fallback, min, max, integer) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < min || n > max) {
      console.error(`${bench}: ${name}: expected ${integer ? 'an integer' : 'a number'} ${min}-${max}, got "${raw}"`);
      process.exit(2);
    }
    return n;
  };
  return {
    /** a number within [min, max], or `fallback` when the variable is unset or empty */
    envNumber: (name, fallback, min, max) => read(name, fallback, min, max, false),
    /** a whole number within [min, max], or `fallback` when the variable is unset or empty */
    envInt: (name, fallback, min, max) => read(name, fallback, min, max, true),
    /** one of `choices` (the first when the variable is unset or empty) */
    envChoice: (name, choices) => {
      const raw = process.env[name];
      if (raw === undefined || raw === '') return choices[0];
      if (choices.includes(raw)) return raw;
      console.error(`${bench}: ${name}: expected one of ${choices.join(', ')}, got "${raw}"`);
      process.exit(2);
    },
  };
}
