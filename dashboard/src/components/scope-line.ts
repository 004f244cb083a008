// One line of an accreditation's scope as a form holds it (text typed; the bounds parsed when sent).
export interface ScopeLine {
  standard: string;
  measurand: string;
  unit: string;
  min: string;
  max: string;
  description: string;
}
