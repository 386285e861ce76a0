import { useState } from 'preact/hooks';

/** The photo input: camera, file picker or drag and drop. */
export function Capture({ onFiles }: { onFiles: (f: File[]) => void }) {
  const [over, setOver] = useState(false);
  const take = (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    if (input.files?.length) onFiles([...input.files]);
    input.value = '';
  };
  return (
    <section
      id="capture"
      tabIndex={-1}
      aria-labelledby="capture-h"
      class={`capture${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const files = [...(e.dataTransfer?.files ?? [])];
        if (files.length) onFiles(files);
      }}
    >
      <h2 id="capture-h">Photo of the machine</h2>
      <div class="row">
        <label class="big-button">
          <input type="file" accept="image/*" capture="environment" onChange={take} />
          Take photo
        </label>
        <label class="big-button secondary">
          <input type="file" accept="image/jpeg,image/png,image/webp" multiple onChange={take} />
          Choose photos
        </label>
      </div>
      <p class="muted">Or drop one or several photos here (JPEG, PNG or WebP).</p>
    </section>
  );
}
