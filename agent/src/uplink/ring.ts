/**
 * In-memory index of the undelivered outbox entries (seq, bytes, enqueue time), in seq
 * order: O(1) push at the tail, O(1) amortised shift at the head. ~24 bytes per entry,
 * so the limits and the oldest age are known without touching the disk.
 */
export class EntryRing {
  #seq: number[] = [];
  #bytes: number[] = [];
  #at: number[] = [];
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
  push(seq: number, bytes: number, at: number): void {
    this.#seq.push(seq);
    this.#bytes.push(bytes);
    this.#at.push(at);
    this.#totalBytes += bytes;
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
      this.#head = 0;
    }
    return e;
  }
}
