// The lab's side of C2SP tlog-witness: submits a checkpoint to one witness with a consistency proof from the size
// the witness last cosigned, learns that size from a 409 answer, and checks the cosignature it gets back.
import {
  ADD_CHECKPOINT_PATH,
  LabtraceError,
  addCosignatures,
  cosignatureVerifier,
  formatAddCheckpoint,
  openCosignatures,
  parseCheckpoint,
  parseNote,
  parseTlogSize,
  toHex,
  type Cosignature,
  type NoteVerifier,
} from '@labtrace/protocols';

export interface WitnessEndpoint {
  /** The witness's submission prefix, e.g. `https://witness.example/` (add-checkpoint is appended). */
  url: string;
  /** The witness's cosigner key, `name+keyid+base64(0x04 || key)`. */
  key: string;
}

export interface CosignResult {
  cosignature: Cosignature;
  /** The signature line as the witness sent it, to append to the checkpoint note. */
  line: string;
}

/** The consistency proof from `oldSize` to the checkpoint's size, from the log's stored hashes. */
export type ProofSource = (oldSize: number) => Uint8Array[] | Promise<Uint8Array[]>;

export class WitnessClient {
  private readonly verifier: NoteVerifier;
  /** Per origin, the size this witness last cosigned as far as this client knows (0: unknown). */
  private readonly known = new Map<string, number>();

  constructor(
    private readonly endpoint: WitnessEndpoint,
    private readonly options: { timeoutMs?: number } = {},
  ) {
    this.verifier = cosignatureVerifier(endpoint.key);
  }

  get name(): string {
    return this.verifier.name;
  }

  /** the witness's key id, hex (as log/cosignatures.ts stores it) */
  get keyIdHex(): string {
    return toHex(this.verifier.keyId);
  }

  /**
   * Asks the witness to cosign `note`. On a 409 the witness says which size it last cosigned; the request is
   * made once more from that size. Throws E_CONFLICT when the witness still refuses (its size is above the
   * checkpoint's, or it holds another root for this size), E_AUTH when the answer is not a valid cosignature
   * by the witness's key, E_BAD_REQUEST on any other refusal, E_WITNESS_UNAVAILABLE when it cannot be reached.
   */
  async cosign(note: string, proof: ProofSource): Promise<CosignResult> {
    const checkpoint = parseCheckpoint(parseNote(note).text);
    let oldSize = Math.min(this.known.get(checkpoint.origin) ?? 0, checkpoint.size);
    for (let attempt = 0; attempt < 2; attempt++) {
      const body = formatAddCheckpoint({ oldSize, proof: oldSize === 0 ? [] : await proof(oldSize), note });
      const res = await this.post(body);
      const text = await res.text();
      if (res.status === 200) {
        const line = text;
        let opened;
        try {
          opened = openCosignatures(addCosignatures(note, line), [this.verifier]);
        } catch (cause) {
          throw new LabtraceError('E_AUTH', `witness ${this.name}: the answer is not a valid cosignature: ${(cause as Error).message}`, { cause });
        }
        const [cosignature] = opened.cosignatures;
        if (cosignature === undefined) throw new LabtraceError('E_AUTH', `witness ${this.name}: the answer holds no cosignature by its key`);
        this.known.set(checkpoint.origin, checkpoint.size);
        return { cosignature, line };
      }
      if (res.status === 409) {
        const size = parseTlogSize(text);
        this.known.set(checkpoint.origin, size);
        if (size > checkpoint.size || size === oldSize) {
          throw new LabtraceError(
            'E_CONFLICT',
            `witness ${this.name} refuses ${checkpoint.origin} size ${checkpoint.size}: it cosigned size ${size}`,
            {
              details: { witness: this.name, witnessSize: size, size: checkpoint.size },
            },
          );
        }
        oldSize = size;
        continue;
      }
      throw new LabtraceError('E_BAD_REQUEST', `witness ${this.name} answered ${res.status}: ${text.trim().slice(0, 200)}`, {
        details: { witness: this.name, status: res.status },
      });
    }
    throw new LabtraceError('E_CONFLICT', `witness ${this.name}: the cosigned size changed again while submitting ${checkpoint.origin}`);
  }

  private async post(body: string): Promise<Response> {
    const url = new URL(ADD_CHECKPOINT_PATH.slice(1), this.endpoint.url.endsWith('/') ? this.endpoint.url : `${this.endpoint.url}/`);
    try {
      return await fetch(url, { method: 'POST', body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
    } catch (cause) {
      throw new LabtraceError('E_WITNESS_UNAVAILABLE', `witness ${this.name} at ${url.href} cannot be reached: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
}
