/**
 * In-memory index of the undelivered outbox entries (seq, bytes, enqueue time on the outbox
 * clock of outbox.ts, the event's subject), in seq order: O(1) push at the tail, O(1) amortised shift at the head. About 24
 * bytes per entry plus the subject string, so the limits, the oldest age and the analyses still
 * waiting for the relay are known without touching the disk.
 */
export class EntryRing {
  #seq: number[] = [];
  #bytes: number[] = [];
  #at: number[] = [];
  #subject: (string | undefined)[] = [];
  #head = 0;
  #totalBytes = 0;

  get size(): number {
    return this.#seq.length - this.#head;
  }
  get bytes(): number {
    return this.#totalBytes;
  }
  headSeq(): number | undefined {
    return this.size > 0 ? this.#seq[this.#head] : undefined;
  }
  headAt(): number | undefined {
    return this.size > 0 ? this.#at[this.#head] : undefined;
  }
  push(seq: number, bytes: number, at: number, subject?: string): void {
    this.#seq.push(seq);
    this.#bytes.push(bytes);
    this.#at.push(at);
    this.#subject.push(subject);
    this.#totalBytes += bytes;
  }
  /** The subjects of the entries still here (delivered out of order ones included until they leave). */
  subjects(into: Set<string>): Set<string> {
    for (let i = this.#head; i < this.#subject.length; i++) {
      const s = this.#subject[i];
      if (s !== undefined) into.add(s);
    }
    return into;
  }
  shift(): { seq: number; bytes: number; at: number } | undefined {
    if (this.size === 0) return undefined;
    const e = { seq: this.#seq[this.#head]!, bytes: this.#bytes[this.#head]!, at: this.#at[this.#head]! };
    this.#head++;
    this.#totalBytes -= e.bytes;
    if (this.#head > 4096 && this.#head * 2 > this.#seq.length) {
      this.#seq = this.#seq.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#at = this.#at.slice(this.#head);
      this.#subject = this.#subject.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }
}
